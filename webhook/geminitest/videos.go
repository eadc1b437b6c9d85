package geminitest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

const videoResponseType = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"

// fakeFile is a file the server serves at /v1beta/files/{id}:download: a
// batch's responses file or a generated video.
type fakeFile struct {
	contentType string
	data        []byte
}

// fakeVideo is the content of every generated video: not a playable MP4,
// just bytes a test can download and compare.
var fakeVideo = []byte("geminitest fake video\n")

// createVideoShape is the body of predictLongRunning as the SDK's
// generateVideosParametersToMldev and generateVideosConfigToMldev build it
// for the Developer API. Images and videos inside an instance are not
// checked.
var createVideoShape = shape{
	"instances": {"prompt": nil, "image": nil, "video": nil, "lastFrame": nil, "referenceImages": nil},
	"parameters": {
		"aspectRatio": nil, "durationSeconds": nil, "enhancePrompt": nil, "negativePrompt": nil,
		"personGeneration": nil, "resolution": nil, "sampleCount": nil,
	},
	"webhookConfig": webhookConfigShape,
}

// createVideo serves POST /v1beta/models/{model}:predictLongRunning, Veo's
// video generation: {"instances":[…],"parameters":{…},"webhookConfig":{…}}
// with webhookConfig at the top level. It answers with the new operation,
// named "models/{model}/operations/{op}".
func (s *Server) createVideo(w http.ResponseWriter, r *http.Request, model string) {
	var req struct {
		Instances  []json.RawMessage `json:"instances"`
		Parameters struct {
			SampleCount json.Number `json:"sampleCount"`
		} `json:"parameters"`
		WebhookConfig *wireWebhookConfig `json:"webhookConfig"`
	}
	if err := decodeRequest(w, r, createVideoShape, protoNames, &req); err != nil {
		respondError(w, familyCore, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Instances) == 0 {
		respondError(w, familyCore, http.StatusBadRequest, "instances is required")
		return
	}
	samples := 1
	if req.Parameters.SampleCount != "" {
		n, err := strconv.Atoi(string(req.Parameters.SampleCount))
		if err != nil || n < 1 || n > 4 {
			respondError(w, familyCore, http.StatusBadRequest, "parameters.sampleCount must be between 1 and 4")
			return
		}
		samples = n
	}
	if req.WebhookConfig != nil {
		if err := checkURIs("webhook_config.uris", req.WebhookConfig.URIs); err != nil {
			respondError(w, familyCore, http.StatusBadRequest, err.Error())
			return
		}
	}
	now := s.now()
	op := fakeID(12)
	j := &fakeJob{
		kind: kindVideo, name: "models/" + model + "/operations/" + op, short: op,
		model: "models/" + model, created: now, updated: now,
		hook: req.WebhookConfig.toHook(), samples: make([]string, samples),
	}
	s.mu.Lock()
	s.videos[j.name] = j
	s.startTimerLocked(j)
	body := s.videoOperation(j)
	s.mu.Unlock()
	respondJSON(w, http.StatusOK, body)
}

// videoOperation renders j as the Operation that predictLongRunning and
// operations.get return. s.mu must be held.
func (s *Server) videoOperation(j *fakeJob) map[string]any {
	op := map[string]any{"name": j.name}
	if j.state != videoDone {
		return op
	}
	op["done"] = true
	if j.errMsg != "" || j.errCode != 0 {
		op["error"] = map[string]any{"code": j.errCode, "message": j.errMsg}
		return op
	}
	var gen []map[string]any
	for _, f := range j.samples {
		gen = append(gen, map[string]any{"video": map[string]any{"uri": s.downloadURI(f)}})
	}
	op["response"] = map[string]any{
		"@type":                 videoResponseType,
		"generateVideoResponse": map[string]any{"generatedSamples": gen},
	}
	return op
}

// finishVideoLocked ends a video operation. Success sends video.generated
// with data.id the full operation name (Google's docs show only
// placeholders, so the live form is unverified), data.output_file_uri the
// first video's download URI, as the operation's
// generatedSamples[0].video.uri gives it, and data.file_name its file name
// ("files/{id}"); a failure
// sends nothing, since Gemini has no event for it. s.mu must be held.
func (s *Server) finishVideoLocked(j *fakeJob, o Outcome) (webhooktest.Payload, bool) {
	j.state = videoDone
	if o.kind == outcomeFail {
		j.errCode, j.errMsg = o.code, o.message
		if j.errMsg == "" {
			j.errMsg = "video generation failed" // so that the operation reads as failed
		}
		return webhooktest.Payload{}, false
	}
	for i := range j.samples {
		j.samples[i] = s.addFileLocked("video/mp4", fakeVideo)
	}
	return event(webhook.VideoGenerated, j.name,
		"output_file_uri", s.downloadURI(j.samples[0]), "file_name", j.samples[0]), true
}

// getVideo serves GET /v1beta/models/{model}/operations/{op}; name is the
// path after /v1beta/.
func (s *Server) getVideo(w http.ResponseWriter, name string) {
	s.mu.Lock()
	j := s.videos[name]
	var op map[string]any
	if j != nil {
		op = s.videoOperation(j)
	}
	s.mu.Unlock()
	if j == nil {
		respondError(w, familyCore, http.StatusNotFound, "operation "+name+" not found")
		return
	}
	respondJSON(w, http.StatusOK, op)
}

// addFileLocked stores a file and returns its name, "files/{id}". s.mu
// must be held.
func (s *Server) addFileLocked(contentType string, data []byte) string {
	name := "files/" + fakeID(12)
	s.files[name] = fakeFile{contentType: contentType, data: data}
	return name
}

// downloadURI is where the server serves the file name ("files/{id}"),
// in the form Gemini gives generated videos.
func (s *Server) downloadURI(name string) string {
	return s.URL + "/v1beta/" + name + ":download?alt=media"
}

// downloadFile serves GET /v1beta/files/{id}:download.
func (s *Server) downloadFile(w http.ResponseWriter, id string) {
	s.mu.Lock()
	f, ok := s.files["files/"+id]
	s.mu.Unlock()
	if !ok {
		respondError(w, familyCore, http.StatusNotFound, "file files/"+id+" not found")
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Write(f.data)
}
