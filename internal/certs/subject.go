package certs

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// attributeNames are the keywords RFC 2253 defines, which Java's
// X500Principal.getName() prints too; every other attribute is written as
// its OID with the value's DER encoding in hex (OID=#...), as both do.
var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
}

// attribute and attributeSET mirror pkix's types with the value kept as
// encoded, so that unnamed attributes print their own DER.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type attributeSET []attribute

// Subject writes cert's subject as one line in RFC 2253 form: the last RDN
// of the certificate first, commas between RDNs, "+" inside a multi-valued
// one, the keywords above, e.g. "UID=abc:123:ksvc,CN=agent-1,O=Example".
func Subject(cert *x509.Certificate) string {
	var seq []attributeSET
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeAttribute(&b, atv)
		}
	}
	return b.String()
}

func writeAttribute(b *strings.Builder, atv attribute) {
	oid := atv.Type.String()
	if name, known := attributeNames[oid]; known {
		var s string
		if rest, err := asn1.Unmarshal(atv.Value.FullBytes, &s); err == nil && len(rest) == 0 {
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(escapeValue(s))
			return
		}
	}
	fmt.Fprintf(b, "%s=#%s", oid, hex.EncodeToString(atv.Value.FullBytes))
}

// escapeValue escapes an attribute value as RFC 2253 section 2.4 says,
// and control characters as \XX.
func escapeValue(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\%02X", r)
			continue
		case strings.ContainsRune(",+\"\\<>;", r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(s)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Filter authorizes client certificates by subject: a subject is allowed
// when any of the expressions matches part of it (anchor with ^ and $ to
// match the whole line).
type Filter struct {
	patterns []*regexp.Regexp
}

// NewFilter compiles the expressions (Go's regexp syntax).
func NewFilter(exprs []string) (*Filter, error) {
	f := &Filter{}
	for i, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("filter %d (%q): %w", i, e, err)
		}
		f.patterns = append(f.patterns, re)
	}
	return f, nil
}

// Allows reports whether subject matches one of the expressions. A nil
// Filter allows nothing.
func (f *Filter) Allows(subject string) bool {
	if f == nil {
		return false
	}
	for _, re := range f.patterns {
		if re.MatchString(subject) {
			return true
		}
	}
	return false
}
