package main

import (
	"strings"
	"testing"
)

// mustManifests reads the real manifests of deploy/k8s.
func mustManifests(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := readManifests("..")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestManifests: the manifests shipped in deploy/k8s are valid and keep
// every invariant.
func TestManifests(t *testing.T) {
	files := mustManifests(t)
	for _, want := range []string{"deployment.yaml", "service.yaml", "pdb.yaml", "hpa.yaml", "networkpolicy.yaml", "configmap.yaml"} {
		if files[want] == nil {
			t.Errorf("deploy/k8s/%s is missing", want)
		}
	}
	if problems := Check(files); len(problems) > 0 {
		t.Errorf("problems in deploy/k8s:\n%s", strings.Join(problems, "\n"))
	}
}

// TestBrokenInvariants breaks the real manifests one way at a time; each
// break must be reported.
func TestBrokenInvariants(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		old, new string // new "" with old "" deletes the file
		want     string
	}{
		{"one replica", "deployment.yaml", "replicas: 2", "replicas: 1", "spec.replicas must be 2"},
		{"wrong type", "deployment.yaml", "replicas: 2", "replicas: two", "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas"},
		{"misspelt field", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", `unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"`},
		{"writable root", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"},
		{"root allowed", "deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot must be true"},
		{"other group", "deployment.yaml", "fsGroup: 65532", "fsGroup: 1000", "fsGroup must be 65532"},
		{"no seccomp", "deployment.yaml", "type: RuntimeDefault", "type: Unconfined", "seccompProfile.type must be RuntimeDefault"},
		{"capabilities kept", "deployment.yaml", `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities.drop must contain ALL"},
		{"privilege escalation", "deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation must be false"},
		{"service account token", "deployment.yaml", "      automountServiceAccountToken: false", "      automountServiceAccountToken: true", "automountServiceAccountToken must be false"},
		{"no preStop", "deployment.yaml", "            preStop:\n              sleep:\n                seconds: 5\n", "            postStart:\n              sleep:\n                seconds: 5\n", "lifecycle.preStop must pause"},
		{"short grace", "deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 20", "must be at least 25"},
		{"grace below pause and drain", "deployment.yaml", "seconds: 5", "seconds: 15", "must cover the preStop pause (15 s) and the 20 s drain"},
		{"readiness on healthz", "deployment.yaml", "path: /readyz", "path: /healthz", `readinessProbe path is "/healthz", must be /readyz`},
		{"no liveness", "deployment.yaml", "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n            periodSeconds: 10\n            timeoutSeconds: 3\n            failureThreshold: 3\n", "", "livenessProbe must be an httpGet of /healthz"},
		{"probe on a missing port", "deployment.yaml", "              path: /readyz\n              port: http", "              path: /readyz\n              port: web", "readinessProbe port web is not a port of the container"},
		{"no memory request", "deployment.yaml", "              memory: 320Mi\n", "", "resources.requests.memory must be set"},
		{"world-readable secret", "deployment.yaml", "defaultMode: 0440", "defaultMode: 0444", "defaultMode must be 0440"},
		{"writable secret mount", "deployment.yaml", "mountPath: /etc/smartlabs-keys/org-a\n              readOnly: true", "mountPath: /etc/smartlabs-keys/org-a\n              readOnly: false", "volumeMount org-a-key must be readOnly"},
		{"secret as literal env", "deployment.yaml", "            - name: GOMEMLIMIT\n", "            - name: ORG_C_CLIENT_SECRET\n              value: hunter2\n            - name: GOMEMLIMIT\n", "env ORG_C_CLIENT_SECRET holds a secret as a literal value"},
		{"unset variable", "deployment.yaml", "- name: SMARTLABS_REDIS_URL", "- name: SMARTLABS_REDIS", "session.redis_url: environment variable SMARTLABS_REDIS_URL is not set"},
		{"config not mounted", "deployment.yaml", `args: ["serve", "--config", "/etc/smartlabs/smartlabs.yaml"]`, `args: ["serve", "--config", "/etc/smartlabs.yaml"]`, "--config /etc/smartlabs.yaml is not in a mounted ConfigMap"},
		{"secret in the ConfigMap", "configmap.yaml", "client_secret: ${ORG_B_CLIENT_SECRET}", "client_secret: hunter2", "issuers[1].client_secret is written into the ConfigMap"},
		{"key file outside a Secret", "configmap.yaml", "private_key_file: /etc/smartlabs-keys/org-a/privatekey.pem", "private_key_file: /etc/smartlabs/privatekey.pem", "key file /etc/smartlabs/privatekey.pem is not in a mounted Secret"},
		{"audit log in the image", "configmap.yaml", `audit_log: "-"`, "audit_log: /var/log/smartlabs/audit.jsonl", "audit_log /var/log/smartlabs/audit.jsonl must be"},
		{"plain http issuer", "configmap.yaml", "iss: https://fhir.org-a.example/api/FHIR/R4", "iss: http://fhir.org-a.example/api/FHIR/R4", "issuers[0].iss"},
		{"unknown config key", "configmap.yaml", "    time_zone: America/Chicago", "    timezone: America/Chicago", "timezone"},
		{"listen port not exposed", "configmap.yaml", "listen: 0.0.0.0:8080", "listen: 0.0.0.0:8081", "listen port 8081 is not a containerPort"},
		{"no session affinity", "service.yaml", "sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 28800\n", "sessionAffinity: None\n", "sessionAffinity must be ClientIP"},
		{"service misses the pods", "service.yaml", "  selector:\n    app.kubernetes.io/name: smartlabs", "  selector:\n    app.kubernetes.io/name: other", "no Service selects the pods"},
		{"no PDB", "pdb.yaml", "", "", "no PodDisruptionBudget selects the pods"},
		{"PDB blocks drains", "pdb.yaml", "minAvailable: 1", "minAvailable: 2", "minAvailable must keep one replica and still let a node drain"},
		{"HPA below two", "hpa.yaml", "minReplicas: 2", "minReplicas: 1", "minReplicas must be at least 2"},
		{"no HPA", "hpa.yaml", "", "", "no HorizontalPodAutoscaler scales"},
		{"no NetworkPolicy", "networkpolicy.yaml", "", "", "no NetworkPolicy selects the pods"},
		{"egress only", "networkpolicy.yaml", `policyTypes: ["Ingress", "Egress"]`, `policyTypes: ["Ingress"]`, "policyTypes must include Egress"},
		{"no DNS", "networkpolicy.yaml", "        - port: 53\n          protocol: UDP\n", "", "egress must allow DNS"},
		{"no Redis", "networkpolicy.yaml", "        - port: 6379\n", "        - port: 6380\n", "egress must allow Redis"},
		{"cloud metadata reachable", "networkpolicy.yaml", "              - 169.254.0.0/16\n", "", "443 to 0.0.0.0/0 must except 169.254.0.0/16"},
		{"egress anywhere", "networkpolicy.yaml", "  egress:\n", "  egress:\n    - ports:\n        - port: 8443\n", "allows any destination or any port"},
		{"unexpected kind", "pdb.yaml", "kind: PodDisruptionBudget", "kind: PodSecurityPolicy", "policy/v1 PodSecurityPolicy is not a kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := mustManifests(t)
			if tt.old == "" {
				delete(files, tt.file)
			} else {
				s := string(files[tt.file])
				if strings.Count(s, tt.old) != 1 {
					t.Fatalf("%s holds %q %d times, want once: the break would not be what it says", tt.file, tt.old, strings.Count(s, tt.old))
				}
				files[tt.file] = []byte(strings.Replace(s, tt.old, tt.new, 1))
			}
			problems := Check(files)
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("no problem reported with %q; got:\n%s", tt.want, strings.Join(problems, "\n"))
		})
	}
}
