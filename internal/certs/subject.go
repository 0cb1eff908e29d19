package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// attributeNames are the keywords Java's X500Principal prints in RFC 2253
// form, plus EMAILADDRESS as its RFC 1779 form does; others print as
// their OID with the value's DER in hex (OID=#...), as RFC 2253 says.
var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.5":                    "SERIALNUMBER",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "EMAILADDRESS",
}

// Subject writes cert's subject as one line in RFC 2253 order (the last
// RDN of the certificate first), e.g. "CN=agent-1,OU=prod,O=Armory".
func Subject(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
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

func writeAttribute(b *strings.Builder, atv pkix.AttributeTypeAndValue) {
	oid := atv.Type.String()
	name, known := attributeNames[oid]
	s, isString := atv.Value.(string)
	if !known || !isString {
		der, err := asn1.Marshal(atv.Value)
		if err != nil {
			der = nil
		}
		fmt.Fprintf(b, "%s=#%s", oid, hex.EncodeToString(der))
		return
	}
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(escapeValue(s))
}

// escapeValue escapes an attribute value as RFC 2253 section 2.4 says.
func escapeValue(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
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

// Allows reports whether subject matches one of the expressions.
func (f *Filter) Allows(subject string) bool {
	for _, re := range f.patterns {
		if re.MatchString(subject) {
			return true
		}
	}
	return false
}
