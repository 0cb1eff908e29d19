package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// TokenCommand runs a command that prints a bearer token
// (clouddriver.auth.tokenCommand).
type TokenCommand struct {
	Command string
	Args    []string
	// JSON: the output is an object with a token attribute; otherwise the
	// output, trimmed, is the token.
	JSON bool
	// Refresh is how long a token is used before the command runs again;
	// 0: for as long as the agent runs.
	Refresh time.Duration
}

// tokenCredentials adds "authorization: Bearer <token>" to the agent's
// calls (clouddriver.auth.*): for a proxy or gateway in front of the control
// plane that checks it. The token is fetched when a call (a session's
// stream) starts; errors never quote the token or the command's output.
type tokenCredentials struct {
	static  string
	command *TokenCommand

	mu      sync.Mutex // guards token, fetched
	token   string
	fetched time.Time
}

// NewTokenCredentials returns per-call credentials for a static token, or
// for the token command when cmd is set.
func NewTokenCredentials(static string, cmd *TokenCommand) credentials.PerRPCCredentials {
	return &tokenCredentials{static: static, command: cmd}
}

func (c *tokenCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	token, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

// Invalidate drops the token fetched from the command, so that the next
// call runs it again: the control plane, or a proxy in front of it, refused
// the token (Unauthenticated). A static token has nothing to refresh.
func (c *tokenCredentials) Invalidate() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}

// RequireTransportSecurity is false so that a token also reaches a
// TLS-terminating proxy in front of a plaintext endpoint
// (clouddriver.insecure: true); the agent warns about that at start.
func (c *tokenCredentials) RequireTransportSecurity() bool { return false }

func (c *tokenCredentials) current(ctx context.Context) (string, error) {
	if c.command == nil {
		return c.static, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && (c.command.Refresh == 0 || time.Since(c.fetched) < c.command.Refresh) {
		return c.token, nil
	}
	token, err := c.command.run(ctx)
	if err != nil {
		return "", err
	}
	c.token, c.fetched = token, time.Now()
	return token, nil
}

// run executes the command (bounded by 30 s) and extracts the token.
func (t *TokenCommand) run(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Command, t.Args...)
	// A child of the command holding its output open must not hold the
	// connection attempt past the deadline: the group is killed, and the
	// output abandoned shortly after.
	killGroupOnCancel(cmd)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return "", fmt.Errorf("clouddriver.auth.tokenCommand %s: %w (stderr: %q)", t.Command, err, msg)
	}
	out := bytes.TrimSpace(stdout.Bytes())
	if !t.JSON {
		if len(out) == 0 {
			return "", fmt.Errorf("clouddriver.auth.tokenCommand %s: printed nothing", t.Command)
		}
		return string(out), nil
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", fmt.Errorf("clouddriver.auth.tokenCommand %s: output is not a JSON object (format json): %w", t.Command, err)
	}
	if v.Token == "" {
		return "", fmt.Errorf("clouddriver.auth.tokenCommand %s: the JSON output has no token attribute", t.Command)
	}
	return v.Token, nil
}
