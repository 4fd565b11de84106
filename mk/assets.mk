# Generated code and built browser assets. Included by the top-level Makefile.
# Both outputs are committed; check-generated fails when they are stale.

NPM ?= npm
GO ?= go

.PHONY: generate assets check-generated

## generate: regenerate the templ components (*_templ.go)
generate:
	$(GO) tool templ generate

# npm ci runs when node_modules is missing or older than the lock file.
node_modules/.package-lock.json: package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

## assets: build static/dist/app.js and static/dist/app.css from frontend/
assets: node_modules/.package-lock.json
	$(NPM) run build

## check-generated: regenerate everything and fail if the committed outputs differ
check-generated: generate assets
	@git diff --exit-code -- '*_templ.go' static/dist || \
		{ echo "generated files are stale: run 'make generate assets' and commit the result" >&2; exit 1; }
	@untracked="$$(git status --porcelain --untracked-files=all -- '*_templ.go' static/dist | grep '^??' || true)"; \
	if [ -n "$$untracked" ]; then \
		echo "generated files are not committed:" >&2; echo "$$untracked" >&2; exit 1; \
	fi
