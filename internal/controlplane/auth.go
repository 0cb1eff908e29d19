package controlplane

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/kubesvc/kubesvc/internal/certs"
)

// The gRPC health service's methods answer without a subject check.
var healthMethods = []string{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/grpc.health.v1.Health/List"}

// subjectInterceptors authorize every call but health checks by the
// subject of the caller's verified client certificate.
func (s *Server) subjectInterceptors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.authorizeSubject(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.authorizeSubject(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// authorizeSubject answers PermissionDenied, naming the subject, when the
// caller has no verified client certificate or its subject matches no
// filter. The refusal is logged and counted.
func (s *Server) authorizeSubject(ctx context.Context, method string) error {
	if slices.Contains(healthMethods, method) {
		return nil
	}
	p, _ := peer.FromContext(ctx)
	var addr string
	if p != nil && p.Addr != nil {
		addr = p.Addr.String()
	}
	var chains int
	var subject string
	if p != nil {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			chains = len(ti.State.VerifiedChains)
			subject = certs.Subject(ti.State.VerifiedChains[0][0])
		}
	}
	if chains == 0 {
		s.metrics.unauthorized.Inc()
		s.log.Warn("agent refused: no verified client certificate (kubesvc.grpc.auth.x509 is enabled)", "peer", addr, "method", method)
		return status.Error(codes.PermissionDenied, "a client certificate is required: this control plane authorizes agents by certificate subject")
	}
	if !s.cfg.ClientSubjects.Allows(subject) {
		s.metrics.unauthorized.Inc()
		s.log.Warn("agent refused: client certificate subject matches no kubesvc.grpc.auth.x509.filters", "peer", addr, "subject", subject, "method", method)
		return status.Errorf(codes.PermissionDenied, "client certificate subject %q is not authorized by this control plane's x509 filters", subject)
	}
	return nil
}
