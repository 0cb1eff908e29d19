// Package grpclogs routes grpc-go's own log (grpclog: failed TLS
// handshakes, transport errors) into a service's slog logger, so that
// what gRPC knows about a refused connection reaches the operator in the
// service's log format. grpclog is process-wide: only main installs it.
package grpclogs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"google.golang.org/grpc/grpclog"
)

// Install makes log receive grpc-go's warnings and errors, and its info
// lines at debug level but for refused connections (see info).
func Install(log *slog.Logger) { grpclog.SetLoggerV2(&logger{log: log.With("component", "grpc")}) }

type logger struct{ log *slog.Logger }

func (l *logger) emit(level slog.Level, msg string) { l.log.Log(context.Background(), level, msg) }

func (l *logger) Info(args ...any)                 { l.info(fmt.Sprint(args...)) }
func (l *logger) Infoln(args ...any)               { l.info(fmt.Sprint(args...)) }
func (l *logger) Infof(format string, args ...any) { l.info(fmt.Sprintf(format, args...)) }
func (l *logger) Warning(args ...any)              { l.emit(slog.LevelWarn, fmt.Sprint(args...)) }
func (l *logger) Warningln(args ...any)            { l.emit(slog.LevelWarn, fmt.Sprint(args...)) }
func (l *logger) Warningf(format string, args ...any) {
	l.emit(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (l *logger) Error(args ...any)   { l.emit(slog.LevelError, fmt.Sprint(args...)) }
func (l *logger) Errorln(args ...any) { l.emit(slog.LevelError, fmt.Sprint(args...)) }
func (l *logger) Errorf(format string, args ...any) {
	l.emit(slog.LevelError, fmt.Sprintf(format, args...))
}

// info logs grpc's info lines at debug level, but for a connection the
// server could not take (a failed TLS handshake: an agent without TLS, or
// with a certificate the server refuses), which grpc reports at info
// level and an operator needs to see.
func (l *logger) info(msg string) {
	level := slog.LevelDebug
	// A TLS handshake that failed; not a connection closed before its
	// preface (TCP health probes do that every few seconds).
	if strings.Contains(msg, "failed to create ServerTransport") && strings.Contains(msg, "ServerHandshake(") &&
		!strings.Contains(msg, "connection reset") && !strings.Contains(msg, "broken pipe") && !strings.Contains(msg, "EOF") {
		level = slog.LevelWarn
	}
	l.emit(level, msg)
}

// Fatal logs and exits, as grpclog's contract says.
func (l *logger) Fatal(args ...any) { l.emit(slog.LevelError, fmt.Sprint(args...)); os.Exit(1) }
func (l *logger) Fatalln(args ...any) {
	l.emit(slog.LevelError, fmt.Sprint(args...))
	os.Exit(1)
}
func (l *logger) Fatalf(format string, args ...any) {
	l.emit(slog.LevelError, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// V reports whether verbose logging at level v is on: never (grpc's
// verbose lines are for debugging grpc itself).
func (l *logger) V(int) bool { return false }
