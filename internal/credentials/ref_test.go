package credentials

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in        string
		want      Ref
		canonical string
	}{
		{"encryptedFile:k8s!n:kubeconfig-t!k:config!ns:spinnaker",
			Ref{FormFile, "kubeconfig-t", "config", "spinnaker"}, ""},
		{"encrypted:k8s!n:kubeconfig-t!k:config!ns:spinnaker",
			Ref{FormString, "kubeconfig-t", "config", "spinnaker"}, ""},
		{"encrypted:k8s!ns:spinnaker!k:config!n:kubeconfig-t",
			Ref{FormString, "kubeconfig-t", "config", "spinnaker"}, "encrypted:k8s!n:kubeconfig-t!k:config!ns:spinnaker"},
		{"encryptedFile:k8s!k:kubeconfig.yaml!n:prod.clusters",
			Ref{FormFile, "prod.clusters", "kubeconfig.yaml", ""}, "encryptedFile:k8s!n:prod.clusters!k:kubeconfig.yaml"},
		{"encryptedFile:k8s!n:a!k:My_Key-1",
			Ref{FormFile, "a", "My_Key-1", ""}, ""},
	} {
		got, err := ParseRef(tc.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		want := tc.canonical
		if want == "" {
			want = tc.in
		}
		if got.String() != want {
			t.Errorf("ParseRef(%q).String() = %q, want %q", tc.in, got.String(), want)
		}
		if again, err := ParseRef(got.String()); err != nil || again != got {
			t.Errorf("ParseRef(String()) = %+v, %v; want %+v", again, err, got)
		}
		if !IsRef(tc.in) {
			t.Errorf("IsRef(%q) = false", tc.in)
		}
	}
	if FormFile.String() != "encryptedFile" || FormString.String() != "encrypted" {
		t.Errorf("Form strings: %s, %s", FormFile, FormString)
	}
}

func TestParseRefErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "expected encryptedFile:k8s!n:NAME!k:KEY"},
		{"secret:k8s!n:a!k:b", "expected encryptedFile:k8s!n:NAME!k:KEY"},
		{"Encrypted:k8s!n:a!k:b", "expected encryptedFile:k8s!n:NAME!k:KEY"},
		{"/etc/kubeconfig", "expected encryptedFile:k8s!n:NAME!k:KEY"},
		{"encryptedFile:", `no secret engine after "encryptedFile:"`},
		{"encrypted:!n:a!k:b", `no secret engine after "encrypted:"`},
		{"encrypted:s3!r:us-west-2!b:bucket!f:kubeconfig", `unsupported secret engine "s3": only "k8s" (Kubernetes Secrets) is supported`},
		{"encryptedFile:vault!e:secret!n:kc!k:config", `unsupported secret engine "vault"`},
		{"encrypted:K8S!n:a!k:b", `unsupported secret engine "K8S"`},
		{"encrypted:k8s", "missing n:SECRET_NAME and k:KEY"},
		{"encrypted:k8s!n:a", "missing k:KEY"},
		{"encrypted:k8s!k:a!ns:spinnaker", "missing n:SECRET_NAME"},
		{"encrypted:k8s!n:a!k:b!", "empty parameter"},
		{"encrypted:k8s!n:a!!k:b", "empty parameter"},
		{"encrypted:k8s!n:a!kb", `parameter "kb" is not NAME:VALUE`},
		{"encrypted:k8s!n:a!k:b!namespace:spinnaker", `unknown parameter "namespace" (the k8s engine takes n, k and ns)`},
		{"encrypted:k8s!n:a!n:b!k:c", "parameter n is given twice"},
		{"encrypted:k8s!n:a!k:c!k:c", "parameter k is given twice"},
		{"encrypted:k8s!n:!k:c", "parameter n is empty"},
		{"encrypted:k8s!n:a!k:", "parameter k is empty"},
		{"encrypted:k8s!n:a!k:b!ns:", "parameter ns is empty"},
		{"encrypted:k8s!n:Bad_Name!k:c", `n: "Bad_Name" is not a valid Secret name`},
		{"encrypted:k8s!n:a!k:b/c", `k: "b/c" is not a valid Secret key`},
		{"encrypted:k8s!n:a!k:b!ns:my.ns", `ns: "my.ns" is not a valid namespace`},
	} {
		_, err := ParseRef(tc.in)
		if err == nil {
			t.Errorf("ParseRef(%q): no error", tc.in)
			continue
		}
		if !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ParseRef(%q): %v does not wrap ErrInvalidRef", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRef(%q) = %q, want it to contain %q", tc.in, err, tc.want)
		}
		if tc.in != "" && !strings.Contains(err.Error(), tc.in) {
			t.Errorf("ParseRef(%q) = %q, want it to quote the reference", tc.in, err)
		}
	}
}

func TestParseRefDoesNotEchoContents(t *testing.T) {
	const secret = "SENTINEL-ref-0xdeadbeef"
	for _, in := range []string{
		"encryptedFile:" + testKubeconfig(secret),
		"encrypted:k8s!n:a!k:b!" + testKubeconfig(secret),
		"encrypted:k8s!n:a!k:b!x:" + strings.Repeat("A", 40) + secret,
		"encrypted:" + secret + " " + secret,
	} {
		_, err := ParseRef(in)
		if err == nil {
			t.Fatalf("ParseRef(%q): no error", in)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseRef error contains the secret: %v", err)
		}
	}
}
