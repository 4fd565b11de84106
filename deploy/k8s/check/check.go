package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	k8syaml "sigs.k8s.io/yaml"

	"smartlabs/server/config"
)

// The numbers the manifests must keep.
const (
	wantReplicas = 2
	// appUID is the image's numeric user and group (deploy/Containerfile).
	appUID = 65532
	// minGrace covers the preStop pause and the server's 20 s drain after SIGTERM.
	minGrace = 25
	// drainSeconds is how long smartlabs lets requests in flight finish after SIGTERM.
	drainSeconds = 20
	// secretMode: the app's group may read key files, nobody else, nobody may write.
	secretMode = 0o440
)

// readManifests reads every *.yaml file in dir.
func readManifests(dir string) (map[string][]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.yaml in %s", dir)
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out[filepath.Base(n)] = b
	}
	return out, nil
}

// objects are the decoded manifests, by kind.
type objects struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	accounts    []*corev1.ServiceAccount
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	policies    []*networkingv1.NetworkPolicy
}

// problems collects every problem, so one run reports them all.
type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// Check returns every problem of the manifests in files (file name → content).
func Check(files map[string][]byte) []string {
	p := &problems{}
	o := decode(files, p)
	d := checkDeployment(o, p)
	if d != nil {
		checkService(o, d, p)
		checkPDB(o, d, p)
		checkHPA(o, d, p)
		checkNetworkPolicy(o, d, p)
	}
	return p.list
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode reads every YAML document strictly into its API type.
func decode(files map[string][]byte, p *problems) *objects {
	o := &objects{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for i, doc := range docSep.Split(string(files[name]), -1) {
			at := fmt.Sprintf("%s (document %d)", name, i+1)
			var tm metav1.TypeMeta
			if err := k8syaml.Unmarshal([]byte(doc), &tm); err != nil {
				p.add("%s: %v", at, err)
				continue
			}
			if tm.APIVersion == "" && tm.Kind == "" {
				continue // comments only
			}
			var obj interface {
				GetName() string
				GetLabels() map[string]string
			}
			var keep func()
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				obj, keep = d, func() { o.deployments = append(o.deployments, d) }
			case "v1 Service":
				s := &corev1.Service{}
				obj, keep = s, func() { o.services = append(o.services, s) }
			case "v1 ConfigMap":
				c := &corev1.ConfigMap{}
				obj, keep = c, func() { o.configMaps = append(o.configMaps, c) }
			case "v1 ServiceAccount":
				a := &corev1.ServiceAccount{}
				obj, keep = a, func() { o.accounts = append(o.accounts, a) }
			case "policy/v1 PodDisruptionBudget":
				b := &policyv1.PodDisruptionBudget{}
				obj, keep = b, func() { o.pdbs = append(o.pdbs, b) }
			case "autoscaling/v2 HorizontalPodAutoscaler":
				h := &autoscalingv2.HorizontalPodAutoscaler{}
				obj, keep = h, func() { o.hpas = append(o.hpas, h) }
			case "networking.k8s.io/v1 NetworkPolicy":
				n := &networkingv1.NetworkPolicy{}
				obj, keep = n, func() { o.policies = append(o.policies, n) }
			default:
				p.add("%s: %s %s is not a kind these manifests use", at, tm.APIVersion, tm.Kind)
				continue
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				p.add("%s: %s: %v", at, tm.Kind, err)
				continue
			}
			keep()
			for _, msg := range validation.IsDNS1123Subdomain(obj.GetName()) {
				p.add("%s: %s name %q: %s", at, tm.Kind, obj.GetName(), msg)
			}
			for k, v := range obj.GetLabels() {
				for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
					p.add("%s: label %s=%s: %s", at, k, v, msg)
				}
			}
		}
	}
	return o
}

// decodeStrict decodes a YAML document as the API server does with
// `kubectl apply --validate=strict`: field names match case-sensitively, and
// unknown or duplicate fields and wrong types are errors. (encoding/json, and
// so sigs.k8s.io/yaml's UnmarshalStrict, would take readOnlyRootFileSystem
// for readOnlyRootFilesystem.)
func decodeStrict(doc []byte, obj any) error {
	j, err := k8syaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// checkDeployment checks the one Deployment and returns it, or nil.
func checkDeployment(o *objects, p *problems) *appsv1.Deployment {
	if len(o.deployments) != 1 {
		p.add("want exactly one Deployment, found %d", len(o.deployments))
		return nil
	}
	d := o.deployments[0]
	at := "Deployment " + d.Name
	if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas {
		p.add("%s: spec.replicas must be %d", at, wantReplicas)
	}
	if !selects(d.Spec.Selector, d.Spec.Template.Labels) {
		p.add("%s: spec.selector does not select the pod template's labels", at)
	}
	ps := &d.Spec.Template.Spec
	checkPodSecurity(at, ps, p)
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		p.add("%s: automountServiceAccountToken must be false (the app never calls the Kubernetes API)", at)
	}
	if sa := ps.ServiceAccountName; sa != "" && sa != "default" && !slices.ContainsFunc(o.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == sa }) {
		p.add("%s: serviceAccountName %q has no ServiceAccount here", at, sa)
	}
	grace := int64(30) // the Kubernetes default
	if ps.TerminationGracePeriodSeconds != nil {
		grace = *ps.TerminationGracePeriodSeconds
	}
	if grace < minGrace {
		p.add("%s: terminationGracePeriodSeconds is %d, must be at least %d", at, grace, minGrace)
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			p.add("%s: volume %s: hostPath volumes are not allowed", at, v.Name)
		}
		if s := v.Secret; s != nil {
			if s.DefaultMode == nil || *s.DefaultMode != secretMode {
				p.add("%s: secret volume %s: defaultMode must be 0440 (owner and fsGroup read, nobody writes)", at, v.Name)
			}
			for _, it := range s.Items {
				if it.Mode != nil && *it.Mode != secretMode {
					p.add("%s: secret volume %s: item %s mode must be 0440", at, v.Name, it.Key)
				}
			}
		}
	}
	if len(ps.Containers) == 0 {
		p.add("%s: no container", at)
		return d
	}
	for i := range ps.Containers {
		checkContainer(at, ps, &ps.Containers[i], grace, p)
	}
	checkAppConfig(at, o, ps, &ps.Containers[0], p)
	return d
}

func checkPodSecurity(at string, ps *corev1.PodSpec, p *problems) {
	sc := ps.SecurityContext
	if sc == nil {
		p.add("%s: pod securityContext is missing", at)
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		p.add("%s: pod securityContext.runAsNonRoot must be true", at)
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"runAsUser", sc.RunAsUser}, {"runAsGroup", sc.RunAsGroup}, {"fsGroup", sc.FSGroup}} {
		if f.v == nil || *f.v != appUID {
			p.add("%s: pod securityContext.%s must be %d (the image's user; secrets are group-readable by it)", at, f.name, appUID)
		}
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.add("%s: pod securityContext.seccompProfile.type must be RuntimeDefault", at)
	}
}

func checkContainer(dep string, ps *corev1.PodSpec, c *corev1.Container, grace int64, p *problems) {
	at := dep + " container " + c.Name
	sc := c.SecurityContext
	if sc == nil {
		p.add("%s: securityContext is missing", at)
	} else {
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.add("%s: readOnlyRootFilesystem must be true", at)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.add("%s: allowPrivilegeEscalation must be false", at)
		}
		if sc.Privileged != nil && *sc.Privileged {
			p.add("%s: must not be privileged", at)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			p.add("%s: capabilities.drop must contain ALL", at)
		} else if len(sc.Capabilities.Add) > 0 {
			p.add("%s: capabilities.add must be empty", at)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			p.add("%s: must not run as root", at)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			p.add("%s: seccompProfile.type must be RuntimeDefault", at)
		}
	}
	for _, r := range []struct {
		list corev1.ResourceList
		kind string
		name corev1.ResourceName
	}{{c.Resources.Requests, "requests", corev1.ResourceCPU}, {c.Resources.Requests, "requests", corev1.ResourceMemory}, {c.Resources.Limits, "limits", corev1.ResourceMemory}} {
		if q, ok := r.list[r.name]; !ok || q.IsZero() {
			p.add("%s: resources.%s.%s must be set", at, r.kind, r.name)
		}
	}
	checkProbe(at, "readinessProbe", c.ReadinessProbe, "/readyz", c, p)
	checkProbe(at, "livenessProbe", c.LivenessProbe, "/healthz", c, p)
	switch pre := preStop(c); {
	case pre == nil:
		p.add("%s: lifecycle.preStop must pause, so proxies stop sending requests before SIGTERM", at)
	case pre.Sleep != nil:
		if pre.Sleep.Seconds < 1 {
			p.add("%s: lifecycle.preStop.sleep.seconds must be at least 1", at)
		} else if grace < pre.Sleep.Seconds+drainSeconds {
			p.add("%s: terminationGracePeriodSeconds (%d) must cover the preStop pause (%d s) and the %d s drain", at, grace, pre.Sleep.Seconds, drainSeconds)
		}
	case pre.Exec != nil:
		// The image has no shell: an exec hook must run the binary itself.
		if len(pre.Exec.Command) == 0 || pre.Exec.Command[0] != "/smartlabs" {
			p.add("%s: lifecycle.preStop.exec must run /smartlabs (the image has no shell); use sleep", at)
		}
	default:
		p.add("%s: lifecycle.preStop must be a sleep", at)
	}
	for _, m := range c.VolumeMounts {
		v := volume(ps, m.Name)
		if v == nil {
			p.add("%s: volumeMount %s names no volume", at, m.Name)
			continue
		}
		if (v.Secret != nil || v.ConfigMap != nil) && !m.ReadOnly {
			p.add("%s: volumeMount %s must be readOnly", at, m.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil && looksSecret(e.Name) {
			p.add("%s: env %s holds a secret as a literal value: take it from a Secret (secretKeyRef)", at, e.Name)
		}
	}
}

// looksSecret reports whether an environment variable's name says it holds a secret.
func looksSecret(name string) bool {
	n := strings.ToUpper(name)
	return strings.Contains(n, "SECRET") || strings.Contains(n, "PASSWORD") || strings.Contains(n, "REDIS_URL")
}

func preStop(c *corev1.Container) *corev1.LifecycleHandler {
	if c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PreStop
}

func checkProbe(at, which string, pr *corev1.Probe, path string, c *corev1.Container, p *problems) {
	if pr == nil || pr.HTTPGet == nil {
		p.add("%s: %s must be an httpGet of %s", at, which, path)
		return
	}
	if pr.HTTPGet.Path != path {
		p.add("%s: %s path is %q, must be %s", at, which, pr.HTTPGet.Path, path)
	}
	if containerPort(c, pr.HTTPGet.Port) == 0 {
		p.add("%s: %s port %s is not a port of the container", at, which, pr.HTTPGet.Port.String())
	}
}

// containerPort resolves a port by number or name; 0 when the container has no such port.
func containerPort(c *corev1.Container, port intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if port.Type == intstr.String && cp.Name == port.StrVal || port.Type == intstr.Int && cp.ContainerPort == port.IntVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func volume(ps *corev1.PodSpec, name string) *corev1.Volume {
	for i := range ps.Volumes {
		if ps.Volumes[i].Name == name {
			return &ps.Volumes[i]
		}
	}
	return nil
}

// mountOf returns the volume mounted where path lies, and path inside it.
func mountOf(ps *corev1.PodSpec, c *corev1.Container, path string) (*corev1.Volume, string) {
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/") + "/"
		if rel, ok := strings.CutPrefix(path, dir); ok {
			return volume(ps, m.Name), rel
		}
	}
	return nil, ""
}

// configPlaceholder stands in for every variable the container sets, so that
// smartlabs' config validation can run: it is a valid Redis URL and a valid
// client id or secret alike.
const configPlaceholder = "rediss://placeholder.invalid:6379/0"

// checkAppConfig finds the smartlabs config the container is started with,
// validates it with smartlabs' own config package, and checks it against the
// pod: variables, secrets, key files, ports.
func checkAppConfig(dep string, o *objects, ps *corev1.PodSpec, c *corev1.Container, p *problems) {
	at := dep + " container " + c.Name
	args := append(slices.Clone(c.Command), c.Args...)
	i := slices.Index(args, "--config")
	if len(args) == 0 || args[0] != "serve" || i < 0 || i+1 >= len(args) {
		p.add("%s: args must be serve --config FILE", at)
		return
	}
	file := args[i+1]
	v, key := mountOf(ps, c, file)
	if v == nil || v.ConfigMap == nil {
		p.add("%s: --config %s is not in a mounted ConfigMap", at, file)
		return
	}
	var data string
	found := false
	for _, cm := range o.configMaps {
		if cm.Name == v.ConfigMap.Name {
			data, found = cm.Data[key]
		}
	}
	if !found {
		p.add("%s: --config %s: ConfigMap %s has no key %s", at, file, v.ConfigMap.Name, key)
		return
	}
	at = fmt.Sprintf("ConfigMap %s key %s", v.ConfigMap.Name, key)

	env := map[string]*corev1.EnvVar{}
	for i := range c.Env {
		env[c.Env[i].Name] = &c.Env[i]
	}
	cfg, err := config.Parse([]byte(data), func(name string) string {
		if env[name] != nil {
			return configPlaceholder
		}
		return ""
	})
	var ve *config.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, msg := range ve.Problems {
			p.add("%s: %s", at, msg)
		}
		return
	case err != nil:
		p.add("%s: %v", at, err)
		return
	}

	// Secrets are referenced, never written into the ConfigMap, and come from Secrets.
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(data), &doc); err == nil {
		walkScalars(&doc, "", func(path, value string) {
			if !strings.HasSuffix(path, "client_secret") && !strings.HasSuffix(path, "redis_url") || value == "" {
				return
			}
			m := envOnly.FindStringSubmatch(value)
			if m == nil {
				p.add("%s: %s is written into the ConfigMap: reference a Secret through ${NAME}", at, path)
				return
			}
			if e := env[m[1]]; e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				p.add("%s: %s: %s must come from a Secret (secretKeyRef)", at, path, m[1])
			}
		})
	}
	var keyFiles []string
	for _, is := range cfg.Issuers {
		if is.PrivateKeyFile != "" {
			keyFiles = append(keyFiles, is.PrivateKeyFile)
		}
		keyFiles = append(keyFiles, is.ExtraPublicKeys...)
	}
	for _, b := range cfg.BackendServices {
		keyFiles = append(keyFiles, b.PrivateKeyFile)
	}
	for _, f := range keyFiles {
		if v, _ := mountOf(ps, c, f); v == nil || v.Secret == nil {
			p.add("%s: key file %s is not in a mounted Secret", at, f)
		}
	}
	if a := cfg.AuditLog; a != "" && a != "-" {
		v, _ := mountOf(ps, c, a)
		if v == nil || v.Secret != nil || v.ConfigMap != nil {
			p.add("%s: audit_log %s must be \"-\" (stderr) or on a writable mounted volume, never the image's filesystem", at, a)
		}
	}
	for _, l := range []struct{ key, addr string }{{"listen", cfg.Listen}, {"metrics_listen", cfg.MetricsListen}} {
		if l.addr == "" {
			continue
		}
		_, port, _ := net.SplitHostPort(l.addr)
		n, _ := strconv.Atoi(port)
		if containerPort(c, intstr.FromInt32(int32(n))) == 0 {
			p.add("%s: %s port %s is not a containerPort", at, l.key, port)
		}
	}
	if _, port, _ := net.SplitHostPort(cfg.Listen); c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil &&
		strconv.Itoa(int(containerPort(c, c.ReadinessProbe.HTTPGet.Port))) != port {
		p.add("%s: the probes do not reach listen (port %s)", at, port)
	}
}

var envOnly = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

func walkScalars(n *yaml.Node, path string, f func(path, value string)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkScalars(c, path, f)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkScalars(n.Content[i+1], strings.TrimPrefix(path+"."+n.Content[i].Value, "."), f)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkScalars(c, fmt.Sprintf("%s[%d]", path, i), f)
		}
	case yaml.ScalarNode:
		f(path, n.Value)
	}
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(l))
}

func checkService(o *objects, d *appsv1.Deployment, p *problems) {
	var svc *corev1.Service
	for _, s := range o.services {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			svc = s
		}
	}
	if svc == nil {
		p.add("no Service selects the pods of Deployment %s", d.Name)
		return
	}
	at := "Service " + svc.Name
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
		p.add("%s: sessionAffinity must be ClientIP (a launch's results are cached on one replica)", at)
	}
	c := &d.Spec.Template.Spec.Containers[0]
	for _, sp := range svc.Spec.Ports {
		if containerPort(c, sp.TargetPort) == 0 {
			p.add("%s: port %s: targetPort %s is not a port of container %s", at, sp.Name, sp.TargetPort.String(), c.Name)
		}
	}
}

func checkPDB(o *objects, d *appsv1.Deployment, p *problems) {
	for _, b := range o.pdbs {
		if !selects(b.Spec.Selector, d.Spec.Template.Labels) {
			continue
		}
		at := "PodDisruptionBudget " + b.Name
		switch {
		case b.Spec.MinAvailable == nil && b.Spec.MaxUnavailable == nil:
			p.add("%s: set minAvailable or maxUnavailable", at)
		case b.Spec.MinAvailable != nil && b.Spec.MinAvailable.Type == intstr.Int &&
			(b.Spec.MinAvailable.IntVal < 1 || b.Spec.MinAvailable.IntVal >= wantReplicas):
			p.add("%s: minAvailable must keep one replica and still let a node drain (1..%d)", at, wantReplicas-1)
		}
		return
	}
	p.add("no PodDisruptionBudget selects the pods of Deployment %s", d.Name)
}

func checkHPA(o *objects, d *appsv1.Deployment, p *problems) {
	for _, h := range o.hpas {
		r := h.Spec.ScaleTargetRef
		if r.Kind != "Deployment" || r.Name != d.Name {
			continue
		}
		at := "HorizontalPodAutoscaler " + h.Name
		if r.APIVersion != "apps/v1" {
			p.add("%s: scaleTargetRef.apiVersion must be apps/v1", at)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < wantReplicas {
			p.add("%s: minReplicas must be at least %d", at, wantReplicas)
		}
		if h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			p.add("%s: maxReplicas is below minReplicas", at)
		}
		if len(h.Spec.Metrics) == 0 {
			p.add("%s: no metrics to scale on", at)
		}
		return
	}
	p.add("no HorizontalPodAutoscaler scales Deployment %s", d.Name)
}

// privateNets must be excluded from the 443 egress rule: the cluster, the
// node networks and cloud metadata are no EHR.
var privateNets = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}

func checkNetworkPolicy(o *objects, d *appsv1.Deployment, p *problems) {
	var np *networkingv1.NetworkPolicy
	for _, n := range o.policies {
		if selects(&n.Spec.PodSelector, d.Spec.Template.Labels) {
			np = n
		}
	}
	if np == nil {
		p.add("no NetworkPolicy selects the pods of Deployment %s", d.Name)
		return
	}
	at := "NetworkPolicy " + np.Name
	for _, t := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
		if !slices.Contains(np.Spec.PolicyTypes, t) {
			p.add("%s: policyTypes must include %s", at, t)
		}
	}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 || len(r.Ports) == 0 {
			p.add("%s: ingress[%d] must name its sources and ports", at, i)
		}
	}
	var dnsUDP, dnsTCP, redis, https bool
	for i, r := range np.Spec.Egress {
		if len(r.To) == 0 || len(r.Ports) == 0 {
			p.add("%s: egress[%d] allows any destination or any port: name both", at, i)
			continue
		}
		for _, port := range r.Ports {
			proto := corev1.ProtocolTCP
			if port.Protocol != nil {
				proto = *port.Protocol
			}
			n := 0
			if port.Port != nil {
				n = port.Port.IntValue()
			}
			switch {
			case n == 53 && proto == corev1.ProtocolUDP:
				dnsUDP = true
			case n == 53 && proto == corev1.ProtocolTCP:
				dnsTCP = true
			case n == 6379 && proto == corev1.ProtocolTCP:
				redis = true
			case n == 443 && proto == corev1.ProtocolTCP:
				https = true
				for j, peer := range r.To {
					if b := peer.IPBlock; b != nil {
						for _, pn := range privateNets {
							if !slices.Contains(b.Except, pn) && coversNet(b.CIDR, pn) {
								p.add("%s: egress[%d].to[%d]: 443 to %s must except %s", at, i, j, b.CIDR, pn)
							}
						}
					}
				}
			}
		}
	}
	for _, need := range []struct {
		ok   bool
		what string
	}{{dnsUDP && dnsTCP, "DNS (53/UDP and 53/TCP)"}, {redis, "Redis (6379/TCP)"}, {https, "HTTPS to the EHRs (443/TCP)"}} {
		if !need.ok {
			p.add("%s: egress must allow %s", at, need.what)
		}
	}
}

// coversNet reports whether cidr contains all of inner.
func coversNet(cidr, inner string) bool {
	_, outer, err1 := net.ParseCIDR(cidr)
	_, in, err2 := net.ParseCIDR(inner)
	if err1 != nil || err2 != nil {
		return false
	}
	ones, _ := outer.Mask.Size()
	innerOnes, _ := in.Mask.Size()
	return outer.Contains(in.IP) && ones <= innerOnes
}
