package store

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// ErrNotFound is returned (wrapped) when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the control plane's persistence. Each SQL dialect implements it
// in its own file; one conformance suite (storetest) runs on every backend.
type Store interface {
	Cache
	Agents
	Accounts
	Operations
	Cluster
	Leases
	MigratedAccounts
	// CheckSchema fails with ErrSchemaTooNew (wrapped) once a newer
	// kubesvc has migrated the database, or started to, in a way this
	// binary must not run against. Open checks the same at start; a
	// running replica calls this periodically, so that a rolling upgrade
	// to an incompatible schema stops the older replicas still running.
	// It never writes.
	CheckSchema(ctx context.Context) error
	// Close releases the database handles.
	Close() error
}

// Cache persists what agents stream: the objects of every account and the
// position (resource version) of every list+watch stream.
type Cache interface {
	// ApplyChanges applies changes in order, atomically: either all of them
	// are persisted or none is. Concurrent calls may share a transaction
	// (SQLite's group commit), each with its own outcome; a call already
	// in a shared transaction when ctx ends waits for its outcome, and
	// may come back committed.
	ApplyChanges(ctx context.Context, changes []Change) error
	// ApplyChangesFenced is ApplyChanges for the changes an agent session
	// sends: they are persisted only while that session is the agent's
	// live one (kubesvc_agent_sessions), checked in the same transaction;
	// otherwise it fails with ErrFenced and persists nothing. A replica
	// still draining a session its agent has left (the agent reconnected
	// elsewhere) cannot then write behind the new session's back.
	ApplyChangesFenced(ctx context.Context, f Fence, changes []Change) error
	// ResumePoints returns the persisted position of every stream of the
	// given accounts. Streams whose sync is in progress (after SyncBegin,
	// before SyncEnd) have no position and are not returned.
	ResumePoints(ctx context.Context, accounts []string) ([]ResumePoint, error)
	// Streams returns every stream of the given accounts, also those whose
	// sync is in progress (with an empty ResourceVersion): what an agent must
	// resume, relist or declare removed.
	Streams(ctx context.Context, accounts []string) ([]ResumePoint, error)
	// DeleteAccount drops every object and stream of an account.
	DeleteAccount(ctx context.Context, account string) error

	// ListObjects returns the objects matching q, ordered by account, kind,
	// namespace, name.
	ListObjects(ctx context.Context, q Query) ([]Object, error)
	// GetObject returns one object or an error wrapping ErrNotFound.
	GetObject(ctx context.Context, key ObjectKey) (Object, error)
	// Namespaces returns the names of the Namespace objects cached for the
	// account, plus every namespace holding a cached object, sorted.
	Namespaces(ctx context.Context, account string) ([]string, error)
	// CachedAccounts returns the accounts with at least one stream or object.
	CachedAccounts(ctx context.Context) ([]AccountSummary, error)
}

// Agents remembers which accounts each agent served when last connected,
// so that accounts it dropped while disconnected leave the cache when it
// returns.
type Agents interface {
	// AgentAccounts returns the accounts last recorded for the agent, sorted.
	AgentAccounts(ctx context.Context, agentID string) ([]string, error)
	// SetAgentAccounts replaces the accounts recorded for the agent.
	SetAgentAccounts(ctx context.Context, agentID string, accounts []string) error
	// AllAgentAccounts returns the accounts recorded for every agent.
	AllAgentAccounts(ctx context.Context) (map[string][]string, error)
	// AgentsServing returns the agents recorded as serving account, sorted.
	AgentsServing(ctx context.Context, account string) ([]string, error)
}

// Accounts persists the dynamic-account lifecycle (kubesvc_accounts). Every
// update is conditional on the version read, so concurrent writers (several
// control-plane replicas) cannot overwrite each other's transitions.
type Accounts interface {
	// CreateAccount inserts a; it fails with ErrExists if the name is taken.
	// Version and the timestamps are set by the store.
	CreateAccount(ctx context.Context, a Account) (Account, error)
	// GetAccount returns one account or an error wrapping ErrNotFound.
	GetAccount(ctx context.Context, name string) (Account, error)
	// ListAccounts returns the accounts in the given states (all if none),
	// sorted by name.
	ListAccounts(ctx context.Context, states ...string) ([]Account, error)
	// AccountStates returns every account, by name, without its
	// definition and credentials (Definition, KubeconfigRef and
	// KubeconfigSealed empty): what reconciling reads every second, on
	// every replica, for each of possibly thousands of accounts.
	AccountStates(ctx context.Context) ([]Account, error)
	// AccountsPage returns the accounts from offset (by name), at most
	// limit of them, and how many there are in all.
	AccountsPage(ctx context.Context, offset, limit int) ([]Account, int, error)
	// UpdateAccount writes a if the stored version still equals a.Version,
	// and returns it with its new version; otherwise it fails with
	// ErrConflict (or ErrNotFound if the row is gone).
	UpdateAccount(ctx context.Context, a Account) (Account, error)
	// RemoveAccount deletes the row if its version still equals version
	// (ErrConflict otherwise; ErrNotFound if already gone).
	RemoveAccount(ctx context.Context, name string, version int64) error
}

// Cluster coordinates the control-plane replicas sharing the database:
// each replica's heartbeat, the live session of every agent (which replica
// holds it), and the assignment of each account to the one agent session
// that caches it. An assignment is valid while its session is recorded;
// sessions go when their agent disconnects or their replica is reaped.
type Cluster interface {
	// HeartbeatReplica records r as alive now. existed is false when the
	// row had to be created: a first start, or a replica that others
	// reaped while it could not heartbeat.
	HeartbeatReplica(ctx context.Context, r Replica) (existed bool, err error)
	// Replicas returns every recorded replica, sorted by id.
	Replicas(ctx context.Context) ([]Replica, error)
	// ReapReplicas deletes the replicas that have not heartbeat for longer
	// than their own recorded Timeout at now (than timeout, for the rows
	// of binaries that record none), with their agent sessions and those
	// sessions' assignments, and returns their ids.
	ReapReplicas(ctx context.Context, now time.Time, timeout time.Duration) ([]string, error)
	// RemoveReplica deletes a replica, its sessions and their assignments.
	RemoveReplica(ctx context.Context, id string) error
	// PutAgentSession records s as its agent's live session, replacing the
	// agent's previous one, whose assignments move to s. It returns the
	// session replaced (nil if none) and the accounts s inherited.
	PutAgentSession(ctx context.Context, s AgentSession) (replaced *AgentSession, inherited []string, err error)
	// RemoveAgentSession deletes the agent's session if it is still
	// sessionID, and every assignment of sessionID.
	RemoveAgentSession(ctx context.Context, agentID, sessionID string) error
	// AgentSessions returns every recorded session, sorted by agent id.
	AgentSessions(ctx context.Context) ([]AgentSession, error)
	// Assignments returns every assignment, sorted by account.
	Assignments(ctx context.Context) ([]Assignment, error)
	// ClaimAssignments assigns to s each of accounts that has no valid
	// assignment (none, or one whose session is no longer recorded) and
	// returns the accounts assigned to s afterwards (claimed now or
	// before). It fails with ErrConflict when s is not its agent's live
	// session.
	ClaimAssignments(ctx context.Context, s AgentSession, accounts []string) ([]string, error)
	// ReleaseAssignments drops the assignments of accounts held by
	// sessionID, or by any session when sessionID is empty.
	ReleaseAssignments(ctx context.Context, sessionID string, accounts []string) error
}

// Replica is one control-plane replica (kubesvc_replicas).
type Replica struct {
	ID string
	// BaseURL is where the replica's REST API answers other replicas.
	BaseURL     string
	StartedAt   time.Time
	HeartbeatAt time.Time
	// Timeout is how long the replica may be silent before its peers
	// declare it dead: its own replica timeout, which follows its
	// heartbeat period. Recorded with every heartbeat (schema version 10);
	// 0 when not recorded (older binaries): peers then use their own.
	Timeout time.Duration
}

// AgentSession is an agent's live stream (kubesvc_agent_sessions).
type AgentSession struct {
	AgentID, SessionID, ReplicaID, ZoneID string
	// Version is the one the agent sent in its registration, kept to its
	// first 253 bytes; empty in sessions recorded by binaries older than
	// schema version 9.
	Version string
	// DynamicAccounts: the agent accepts account commands.
	DynamicAccounts bool
	ConnectedAt     time.Time
}

// Assignment says which agent session caches an account
// (kubesvc_assignments).
type Assignment struct {
	Account, AgentID, SessionID, ReplicaID string
	AssignedAt                             time.Time
}

// Operations persists the operation history (kubesvc_ops_history).
type Operations interface {
	// CreateOperation records a new operation; ErrExists if its id is
	// taken (a repeated clientRequestId).
	CreateOperation(ctx context.Context, op Operation) error
	// GetOperation returns one operation or an error wrapping ErrNotFound.
	GetOperation(ctx context.Context, id string) (Operation, error)
	// UpdateOperation writes op's mutable fields (agent, state, error,
	// result, sent and finished times) if the stored state is still
	// fromState; otherwise ErrConflict.
	UpdateOperation(ctx context.Context, op Operation, fromState string) error
	// MarkOperationSent records the agent an operation went to and when,
	// changing nothing else, if the operation is still RUNNING (no-op
	// otherwise). Concurrent with UpdateOperation it loses nothing.
	MarkOperationSent(ctx context.Context, id, agentID string, at time.Time) error
	// ListOperations returns the newest operations first, at most limit,
	// after skipping the offset newest.
	ListOperations(ctx context.Context, limit, offset int) ([]Operation, error)
	// OperationsInState returns the operations in state (e.g. RUNNING),
	// oldest first.
	OperationsInState(ctx context.Context, state string) ([]Operation, error)
	// PurgeOperations deletes operations received before t; it returns
	// how many.
	PurgeOperations(ctx context.Context, before time.Time) (int, error)
}

// Operation is one row of kubesvc_ops_history.
type Operation struct {
	ID             string
	Account        string
	Type           string
	AgentID        string
	ControlPlaneID string
	State          string
	ErrorMessage   string
	Request        []byte // the operation description (JSON)
	Result         []byte // the result (JSON), when finished
	ReceivedAt     time.Time
	SentAt         time.Time // zero until sent to an agent
	FinishedAt     time.Time // zero while running
}

// Fence names the agent session changes come from (ApplyChangesFenced).
type Fence struct {
	AgentID, SessionID string
}

// ErrFenced is returned (wrapped) by ApplyChangesFenced when the session
// is no longer its agent's live session.
var ErrFenced = errors.New("the agent session is no longer its live one")

// ErrExists and ErrConflict are returned (wrapped) by Accounts.
var (
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed concurrently")
)

// Account is one row of kubesvc_accounts.
type Account struct {
	Name   string
	State  string
	ZoneID string
	// Definition is the account as given (JSON), without credential
	// content.
	Definition []byte
	// KubeconfigRef is where the kubeconfig comes from: a secret reference
	// (encryptedFile:k8s!...), a file path, or a marker for inline content.
	KubeconfigRef string
	// KubeconfigSealed is inline kubeconfig content, encrypted.
	KubeconfigSealed string
	ErrorMessage     string
	FailedCount      int
	APIHost          string
	KubeVersion      string
	CertFingerprint  string
	Dynamic          bool
	// AgentID is the agent that last activated the account.
	AgentID string
	// Owner is the control-plane replica driving a transient state.
	Owner     string
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// Resource identifies a Kubernetes resource type.
type Resource struct {
	Group, Version, Resource, Kind string
	Namespaced                     bool
}

// StreamKey names one list+watch stream: a resource of an account, across
// all namespaces (Namespace empty) or within one namespace.
type StreamKey struct {
	Account   string
	Resource  Resource
	Namespace string
	// SelectorHash fingerprints the field selector the stream is listed
	// with. Like Resource.Version and Kind it is descriptive, not part of
	// the identity: the last value seen is stored and returned.
	SelectorHash string
}

// ObjectKey identifies a cached object. Group and kind together name the
// type: the cache keeps one (preferred) version per group and kind.
type ObjectKey struct {
	Account, Group, Kind, Namespace, Name string
}

// Object is a cached Kubernetes object.
type Object struct {
	ObjectKey
	Version         string // API version without group, e.g. "v1"
	Resource        string // plural resource name
	UID             string
	ResourceVersion string
	// Application is the Spinnaker application: the
	// moniker.spinnaker.io/application annotation, else the
	// app.kubernetes.io/name label, else empty.
	Application string
	Labels      map[string]string
	// JSON is the object as the agent sent it (already scrubbed).
	JSON      []byte
	UpdatedAt time.Time
}

// ChangeType says what a Change does.
type ChangeType int

const (
	// Listed: an object seen by a list in progress (after SyncBegin).
	Listed ChangeType = iota + 1
	// Upserted: an object added or modified, seen by a watch. The stream's
	// position becomes the object's resource version.
	Upserted
	// Deleted: an object deleted, seen by a watch. The stream's position
	// becomes ResourceVersion (the deleted object's final version).
	Deleted
	// SyncBegin starts a list that replaces the stream's contents: the
	// stream gets a new generation and loses its position.
	SyncBegin
	// SyncEnd completes it: objects of the stream not Listed or Upserted
	// since SyncBegin are deleted and the position becomes ResourceVersion.
	SyncEnd
	// Bookmark moves the position to ResourceVersion.
	Bookmark
	// StreamRemoved drops the stream and everything cached for it.
	StreamRemoved
	// Applied: an object as an operation just applied it, ahead of the
	// watch. It is persisted only when the stream is not syncing and its
	// position is older than the object's resource version (compared as
	// numbers, as etcd issues them), and never moves the position. One
	// not persisted comes back from ApplyChanges with a nil Object.
	Applied
)

// Change is one step of a stream. Object is set for Listed, Upserted and
// Deleted (for Deleted only its key matters); ResourceVersion for Deleted,
// SyncEnd and Bookmark.
type Change struct {
	Type            ChangeType
	Stream          StreamKey
	Object          *Object
	ResourceVersion string
}

// ResumePoint is the persisted position of a stream.
type ResumePoint struct {
	Stream          StreamKey
	ResourceVersion string
	UpdatedAt       time.Time
}

// Query selects cached objects. Empty fields do not filter.
type Query struct {
	Account string
	// Kind matches case-insensitively ("deployment" finds Deployment).
	Kind  string
	Group string
	// CoreGroup, with Group empty, matches the core group only (empty
	// Group alone matches any group).
	CoreGroup bool
	Namespace string
	Name      string
	// NamePrefix selects the names that start with it ("web-" for the
	// Pods of Job web, "web." for the Events of object web), in the index.
	NamePrefix  string
	Application string
	// Selector filters on labels; nil selects everything.
	Selector labels.Selector
	// Limit caps the result; 0 means no cap.
	Limit int
	// After, when set, starts the result after this object in the list
	// order (account, kind, namespace, name, group): the last object of
	// the previous page.
	After *ObjectKey
}

// AccountSummary counts what is cached for an account.
type AccountSummary struct {
	Account string
	Objects int
	Streams int
}
