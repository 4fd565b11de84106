# The container image. Included by the top-level Makefile; not part of `make test`.
#
# make image        build the image with podman (or docker) and check its size
# make image-smoke  run the image's filesystem as a container would (deploy/image-smoke.sh)

CONTAINER ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
MODIFIED := $(if $(findstring -dirty,$(VERSION)),true,false)
IMAGE ?= smartlabs:$(VERSION)
# The build host's CA certificates (Debian's ca-certificates package).
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
# The image must stay under 30 MB.
IMAGE_MAX_BYTES ?= 30000000

IMAGE_DIR := build/image
LDFLAGS := -s -w \
	-X smartlabs/server.linkVersion=$(VERSION) \
	-X smartlabs/server.linkRevision=$(REVISION) \
	-X smartlabs/server.linkModified=$(MODIFIED)

.PHONY: image image-stage image-smoke

image-stage:
	@[ -s "$(CA_BUNDLE)" ] || { echo "no CA bundle at $(CA_BUNDLE): install ca-certificates or set CA_BUNDLE" >&2; exit 1; }
	rm -rf $(IMAGE_DIR)
	mkdir -p $(IMAGE_DIR)/etc/ssl/certs $(IMAGE_DIR)/etc/smartlabs $(IMAGE_DIR)/var/lib $(IMAGE_DIR)/state
	CGO_ENABLED=0 $(GO) build -trimpath -tags timetzdata -ldflags "$(LDFLAGS)" -o $(IMAGE_DIR)/smartlabs ./cmd/smartlabs
	printf 'smartlabs:x:65532:65532:smartlabs:/nonexistent:/sbin/nologin\n' > $(IMAGE_DIR)/etc/passwd
	printf 'smartlabs:x:65532:\n' > $(IMAGE_DIR)/etc/group
	cp $(CA_BUNDLE) $(IMAGE_DIR)/etc/ssl/certs/ca-certificates.crt
	chmod 0555 $(IMAGE_DIR)/smartlabs
	chmod 0444 $(IMAGE_DIR)/etc/passwd $(IMAGE_DIR)/etc/group $(IMAGE_DIR)/etc/ssl/certs/ca-certificates.crt
	chmod 0555 $(IMAGE_DIR)/etc $(IMAGE_DIR)/etc/ssl $(IMAGE_DIR)/etc/ssl/certs $(IMAGE_DIR)/etc/smartlabs
	chmod 0755 $(IMAGE_DIR)/var $(IMAGE_DIR)/var/lib $(IMAGE_DIR)/state

image: image-stage ## Build the container image (podman or docker) FROM scratch and check it is under 30 MB.
	@[ -n "$(CONTAINER)" ] || { echo "neither podman nor docker is installed (apt-get install podman)" >&2; exit 1; }
	$(CONTAINER) build $(if $(findstring podman,$(CONTAINER)),--format docker) \
		-f deploy/Containerfile \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		-t $(IMAGE) -t smartlabs:latest $(IMAGE_DIR)
	@size=$$($(CONTAINER) image inspect --format '{{.Size}}' $(IMAGE)); \
	echo "$(IMAGE): $$size bytes (limit $(IMAGE_MAX_BYTES))"; \
	[ "$$size" -lt $(IMAGE_MAX_BYTES) ] || { echo "image too large" >&2; exit 1; }

image-smoke: image ## Smoke-test the image's filesystem: user 65532, read-only root, /healthz 200, version (needs root).
	CONTAINER=$(CONTAINER) deploy/image-smoke.sh $(IMAGE) $(VERSION) $(REVISION)
