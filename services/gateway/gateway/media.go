package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
)

func jsonLine(v any) ([]byte, error) { return json.Marshal(v) }

// hls serves the job's live preview from MinIO: index.m3u8, init.mp4 and
// <n>.m4s, so that any HLS player can watch it through the gateway. Each
// file is served whole and of one version (serveObject); one not made yet
// is 404 not_ready with Retry-After while the job runs.
func (g *Gateway) hls(w http.ResponseWriter, r *http.Request) {
	id, file := r.PathValue("id"), r.PathValue("file")
	var key blob.Key
	var err error
	var ctype string
	switch {
	case file == "index.m3u8":
		key, err = blob.HLSPlaylist(id)
		ctype = "application/vnd.apple.mpegurl"
	case file == "init.mp4":
		key, err = blob.HLSInit(id)
		ctype = "video/mp4"
	case strings.HasSuffix(file, ".m4s"):
		n, perr := strconv.ParseUint(strings.TrimSuffix(file, ".m4s"), 10, 32)
		if perr != nil {
			writeError(w, http.StatusNotFound, "not_found", "no such preview file "+file)
			return
		}
		key, err = blob.HLSSegment(id, uint32(n))
		ctype = "video/iso.segment"
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such preview file "+file)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	cache := ""
	if file == "index.m3u8" {
		cache = "no-cache"
	}
	switch err := g.serveObject(w, r, key, ctype, cache); {
	case errors.Is(err, blob.ErrNotFound):
		g.notMade(r.Context(), w, id, "preview file "+file, retryPreview)
	case err != nil:
		fail(w, err)
	}
}

// modelsInfo lists the models, the pools and the live workers with their
// GPUs, from the spool_workers registry.
func (g *Gateway) modelsInfo(w http.ResponseWriter, r *http.Request) {
	type model struct {
		Name          string `json:"name"`
		DefaultWindow int    `json:"default_window"`
		MaxWindow     int    `json:"max_window"`
		Steps         int    `json:"steps"`
	}
	type gpu struct {
		Index       uint32 `json:"index"`
		UUID        string `json:"uuid"`
		Name        string `json:"name"`
		MemoryBytes uint64 `json:"memory_bytes"`
	}
	type worker struct {
		ID           string   `json:"id"`
		Node         string   `json:"node"`
		Pool         string   `json:"pool"`
		Backend      string   `json:"backend"`
		Models       []string `json:"models"`
		Slots        uint32   `json:"slots"`
		GPUs         []gpu    `json:"gpus"`
		CurrentTasks []string `json:"current_tasks"`
	}
	out := struct {
		Models  []model  `json:"models"`
		Pools   []string `json:"pools"`
		Workers []worker `json:"workers"`
	}{Pools: g.cfg.Pools, Workers: []worker{}}
	for _, m := range g.catalog.Models {
		out.Models = append(out.Models, model{Name: m.Name, DefaultWindow: m.LargeWindow, MaxWindow: m.MaxWindow, Steps: m.Steps})
	}
	sort.Slice(out.Models, func(i, j int) bool { return out.Models[i].Name < out.Models[j].Name })
	kv, err := g.bus.Workers(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	keys, err := kv.ListKeys(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	for k := range keys.Keys() {
		e, err := kv.Get(r.Context(), k)
		if err != nil {
			continue
		}
		info, err := bus.DecodeWorkerInfo(e.Value())
		if err != nil {
			continue
		}
		wv := worker{ID: info.GetId(), Node: info.GetNode(), Pool: info.GetPool(), Backend: info.GetBackend(), Models: info.GetModels(),
			Slots: info.GetSlots(), GPUs: []gpu{}, CurrentTasks: info.GetCurrentTasks()}
		for _, g := range info.GetGpus() {
			wv.GPUs = append(wv.GPUs, gpu{Index: g.GetIndex(), UUID: g.GetUuid(), Name: g.GetName(), MemoryBytes: g.GetMemoryTotalBytes()})
		}
		out.Workers = append(out.Workers, wv)
	}
	sort.Slice(out.Workers, func(i, j int) bool { return out.Workers[i].ID < out.Workers[j].ID })
	writeJSON(w, http.StatusOK, out)
}
