package health

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
)

// describe is a failed check's detail for operators (the admin API's
// down_reason and the down event): what was asked and what went wrong,
// without the dial address the backend's name already gives.
//
//	GET /health returned 503
//	connect: connection refused
//	timeout after 2s
//	TLS error: x509: certificate signed by unknown authority
func describe(s *settings, err error) string {
	var se *StatusError
	var te *TimeoutError
	switch {
	case errors.As(err, &se):
		return "GET " + s.path + " returned " + strconv.Itoa(se.Code)
	case errors.As(err, &te):
		return te.Error()
	}
	return ErrorDetail(err)
}

// ErrorDetail is a connection error's text for operators, without the
// addresses: "dial tcp 10.0.0.1:80: connect: connection refused" becomes
// "connect: connection refused", "read tcp ...: read: connection reset by
// peer" becomes "read: connection reset by peer", and a handshake or
// certificate failure is "TLS error: ...". Passive checks use it for the
// ejection's reason.
func ErrorDetail(err error) string {
	if isTLS(err) {
		return "TLS error: " + err.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// isTLS reports whether err comes from the TLS handshake or certificate
// verification.
func isTLS(err error) bool {
	var (
		rh tls.RecordHeaderError
		al tls.AlertError
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		ci x509.CertificateInvalidError
		hn x509.HostnameError
	)
	return errors.As(err, &rh) || errors.As(err, &al) || errors.As(err, &cv) ||
		errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn)
}
