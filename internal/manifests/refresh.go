package manifests

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/kubesvc/kubesvc/internal/httpapi"
)

// refreshRequest is Orca's force cache refresh of a deployed manifest
// (ManifestForceCacheRefreshTask), between a deploy and its wait.
type refreshRequest struct {
	Account  *string `json:"account"`
	Name     *string `json:"name"`
	Location *string `json:"location"`
}

// postRefresh answers a force cache refresh with 200, "processed": the
// cache follows the clusters' watches, and an operation's task ends only
// once the cache has what it applied, so there is nothing to refresh. The
// request is checked, so that a malformed one is not taken for done.
func (h *Handler) postRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", httpapi.DecodeError("body", err))
		return
	}
	switch {
	case req.Account == nil || *req.Account == "":
		httpapi.WriteError(w, http.StatusBadRequest, "account: required")
		return
	case req.Name == nil:
		httpapi.WriteError(w, http.StatusBadRequest, `name: required ("KIND NAME")`)
		return
	}
	if _, _, err := fullName(*req.Name); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.Location != nil {
		if err := checkLocation(*req.Location); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{})
}

// getPendingRefreshes answers that no refresh is pending: each is done
// when asked (postRefresh).
func (h *Handler) getPendingRefreshes(w http.ResponseWriter, _ *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, []any{})
}
