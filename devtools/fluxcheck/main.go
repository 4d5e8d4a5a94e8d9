// fluxcheck validates Flux GitOps manifests against Flux's own Go API types.
//
// Usage: fluxcheck FILE...
//
// Each file is split into YAML documents. Each document must be one of
// HelmRelease (helm.toolkit.fluxcd.io/v2), GitRepository or OCIRepository
// (source.toolkit.fluxcd.io/v1), or a kustomize Kustomization
// (kustomize.config.k8s.io/v1beta1). It is decoded strictly, the way the API
// server decodes: field names are case-sensitive, and unknown or duplicate
// fields are errors. Then the kubebuilder markers that matter here (required
// fields, enums, URL and duration patterns) are checked, since no API server
// is at hand to apply the CRDs' OpenAPI schemas.
//
// The first error is printed as "path: document N (Kind name): message" and the
// exit status is 1; otherwise "ok: N documents" is printed.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// Patterns copied from the kubebuilder markers of the API types.
var (
	durationRe        = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`)
	sourceTimeoutRe   = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m))+$`)
	gitURLRe          = regexp.MustCompile(`^(http|https|ssh)://.*$`)
	ociURLRe          = regexp.MustCompile(`^oci://.*$`)
	valuesKeyRe       = regexp.MustCompile(`^[\-._a-zA-Z0-9]+$`)
	chartSourceKinds  = []string{"HelmRepository", "GitRepository", "Bucket"}
	chartRefKinds     = []string{"OCIRepository", "HelmChart", "ExternalArtifact"}
	valuesFromKinds   = []string{"Secret", "ConfigMap"}
	driftModes        = []string{"enabled", "warn", "disabled"}
	reconcileStrategy = []string{"ChartVersion", "Revision"}
)

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fluxcheck FILE...")
		os.Exit(2)
	}
	total := 0
	for _, path := range os.Args[1:] {
		n, err := checkFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
		total += n
	}
	fmt.Printf("ok: %d documents\n", total)
}

// checkFile returns the number of non-empty documents in path.
func checkFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	n := 0
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("document %d: %v", n+1, err)
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return n, fmt.Errorf("document %d: %v", n+1, err)
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
			continue // empty document, or only comments
		}
		n++
		var h header
		if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &h); err != nil {
			return n, fmt.Errorf("document %d: not a Kubernetes-style object: %v", n, err)
		}
		if err := checkDocument(h, j); err != nil {
			id := h.Kind
			if id == "" {
				id = "no kind"
			}
			if h.Metadata.Name != "" {
				id += " " + h.Metadata.Name
			}
			return n, fmt.Errorf("document %d (%s): %v", n, id, err)
		}
	}
}

func checkDocument(h header, j []byte) error {
	var raw map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &raw); err != nil {
		return err
	}
	var obj any
	var check func() error
	var durs map[string]*regexp.Regexp
	switch h.APIVersion + " " + h.Kind {
	case helmv2.GroupVersion.String() + " HelmRelease":
		hr := &helmv2.HelmRelease{}
		obj, check, durs = hr, func() error { return checkHelmRelease(hr) }, helmReleaseDurations
	case sourcev1.GroupVersion.String() + " GitRepository":
		gr := &sourcev1.GitRepository{}
		obj, check, durs = gr, func() error { return checkGitRepository(gr) }, sourceDurations
	case sourcev1.GroupVersion.String() + " OCIRepository":
		or := &sourcev1.OCIRepository{}
		obj, check, durs = or, func() error { return checkOCIRepository(or) }, sourceDurations
	case kusttypes.KustomizationVersion + " " + kusttypes.KustomizationKind:
		obj, check = &kusttypes.Kustomization{}, func() error { return nil }
	}
	if obj != nil {
		if err := decodeStrict(j, obj); err != nil {
			// A bad duration fails decoding with a message that names no field.
			if derr := checkDurations(raw, durs, false); derr != nil {
				return derr
			}
			return err
		}
		if err := checkDurations(raw, durs, true); err != nil {
			return err
		}
		return check()
	}
	if h.APIVersion == "" || h.Kind == "" {
		return fmt.Errorf("apiVersion and kind are required (got apiVersion %q, kind %q)", h.APIVersion, h.Kind)
	}
	return fmt.Errorf("unsupported apiVersion/kind %s %s", h.APIVersion, h.Kind)
}

// decodeStrict decodes JSON as the API server does: case-sensitive field
// names, unknown and duplicate fields rejected. (encoding/json would match
// "Interval" to "interval" silently.)
func decodeStrict(j []byte, v any) error {
	strictErrs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

func checkHelmRelease(hr *helmv2.HelmRelease) error {
	if err := checkName(hr.Name); err != nil {
		return err
	}
	s := hr.Spec
	switch {
	case s.Chart == nil && s.ChartRef == nil:
		return errors.New("spec: either chart or chartRef must be set")
	case s.Chart != nil && s.ChartRef != nil:
		return errors.New("spec: only one of chart and chartRef may be set")
	case s.Chart != nil:
		cs := s.Chart.Spec
		if cs.Chart == "" {
			return errors.New("spec.chart.spec.chart is required")
		}
		if err := oneOf("spec.chart.spec.sourceRef.kind", cs.SourceRef.Kind, chartSourceKinds); err != nil {
			return err
		}
		if cs.SourceRef.Name == "" {
			return errors.New("spec.chart.spec.sourceRef.name is required")
		}
		if cs.ReconcileStrategy != "" {
			if err := oneOf("spec.chart.spec.reconcileStrategy", cs.ReconcileStrategy, reconcileStrategy); err != nil {
				return err
			}
		}
	default:
		if err := oneOf("spec.chartRef.kind", s.ChartRef.Kind, chartRefKinds); err != nil {
			return err
		}
		if s.ChartRef.Name == "" {
			return errors.New("spec.chartRef.name is required")
		}
	}
	if len(s.ReleaseName) > 53 {
		return fmt.Errorf("spec.releaseName %q is longer than 53 characters", s.ReleaseName)
	}
	for i, v := range s.ValuesFrom {
		field := fmt.Sprintf("spec.valuesFrom[%d]", i)
		if err := oneOf(field+".kind", v.Kind, valuesFromKinds); err != nil {
			return err
		}
		if v.Name == "" {
			return fmt.Errorf("%s.name is required", field)
		}
		if v.ValuesKey != "" && !valuesKeyRe.MatchString(v.ValuesKey) {
			return fmt.Errorf("%s.valuesKey %q does not match %s", field, v.ValuesKey, valuesKeyRe)
		}
	}
	if d := s.DriftDetection; d != nil && d.Mode != "" {
		if err := oneOf("spec.driftDetection.mode", string(d.Mode), driftModes); err != nil {
			return err
		}
	}
	return nil
}

func checkGitRepository(gr *sourcev1.GitRepository) error {
	if err := checkName(gr.Name); err != nil {
		return err
	}
	if !gitURLRe.MatchString(gr.Spec.URL) {
		return fmt.Errorf("spec.url %q does not match %s", gr.Spec.URL, gitURLRe)
	}
	return nil
}

func checkOCIRepository(or *sourcev1.OCIRepository) error {
	if err := checkName(or.Name); err != nil {
		return err
	}
	if !ociURLRe.MatchString(or.Spec.URL) {
		return fmt.Errorf("spec.url %q does not match %s", or.Spec.URL, ociURLRe)
	}
	return nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("metadata.name is required")
	}
	return nil
}

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if v == "" {
		return fmt.Errorf("%s is required (one of %s)", field, strings.Join(allowed, ", "))
	}
	return fmt.Errorf("%s %q is not one of %s", field, v, strings.Join(allowed, ", "))
}

// lookup returns the value at path in raw, and whether it is present.
func lookup(raw map[string]any, path ...string) (any, bool) {
	var cur any = raw
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Duration fields per kind, with the pattern of their kubebuilder marker;
// spec.interval is the one that is required.
var (
	helmReleaseDurations = map[string]*regexp.Regexp{
		"spec.interval":            durationRe,
		"spec.timeout":             durationRe,
		"spec.chart.spec.interval": durationRe,
		"spec.install.timeout":     durationRe,
		"spec.upgrade.timeout":     durationRe,
		"spec.test.timeout":        durationRe,
		"spec.rollback.timeout":    durationRe,
		"spec.uninstall.timeout":   durationRe,
	}
	sourceDurations = map[string]*regexp.Regexp{
		"spec.interval": durationRe,
		"spec.timeout":  sourceTimeoutRe,
	}
)

// checkDurations checks duration fields on the raw text: the typed
// metav1.Duration keeps only the parsed value, and the CRD pattern is stricter
// than time.ParseDuration (no "us", no sign). Fields are checked in sorted
// order so that the first error is always the same one.
func checkDurations(raw map[string]any, fields map[string]*regexp.Regexp, requireInterval bool) error {
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, field := range names {
		re := fields[field]
		v, ok := lookup(raw, strings.Split(field, ".")...)
		if !ok {
			if requireInterval && field == "spec.interval" {
				return fmt.Errorf("%s is required", field)
			}
			continue
		}
		s, isString := v.(string)
		if !isString {
			return fmt.Errorf("%s must be a duration string, got %v", field, v)
		}
		if !re.MatchString(s) {
			return fmt.Errorf("%s %q does not match %s", field, s, re)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%s: %v", field, err)
		}
	}
	return nil
}
