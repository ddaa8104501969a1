package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/web"
)

// KindDescriber is optionally implemented by Deps.Plugins: it reports a
// kind as its plugin describes itself (config JSON Schema, commands), which
// livedoc needs to build its create form. Without it /api/v1/kinds lists
// only names.
type KindDescriber interface {
	Describe(ctx context.Context, kind string) (emitter.Kind, error)
}

// livedocCSP keeps every request of the page on this node: no CDN, no
// inline script, nothing fetched from elsewhere.
const livedocCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var livedocTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": jsonContentType,
}

func (s *Server) livedoc(_ context.Context, c *app.RequestContext) error {
	return serveLivedocFile(c, "index.html")
}

func (s *Server) livedocAsset(_ context.Context, c *app.RequestContext) error {
	return serveLivedocFile(c, c.Param("asset"))
}

func serveLivedocFile(c *app.RequestContext, name string) error {
	ctype, ok := livedocTypes[path.Ext(name)]
	if !ok || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return notFound("no livedoc asset %q", name)
	}
	b, err := fs.ReadFile(web.Livedoc, "livedoc/"+name)
	if err != nil {
		return notFound("no livedoc asset %q", name)
	}
	h := &c.Response.Header
	h.Set("Content-Security-Policy", livedocCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// The files change only with the binary; revalidating is cheap and
	// keeps an upgraded node from serving a stale mix of old and new JS.
	h.Set("Cache-Control", "no-cache")
	c.Data(http.StatusOK, ctype, b)
	return nil
}

// openapiJSON is the embedded OpenAPI document as JSON, so the page needs
// no YAML parser; converted once, keeping the document's key order (the
// page lists routes in the order the document gives them).
var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(web.OpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	var buf bytes.Buffer
	if err := nodeJSON(&buf, &doc, 0); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return buf.Bytes(), nil
})

// nodeJSON writes a YAML node as JSON; aliases are expanded (bounded in
// depth, so an alias cycle is an error, not a hang).
func nodeJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > 64 {
		return errors.New("nested too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return nodeJSON(buf, n.Content[0], depth+1)
	case yaml.AliasNode:
		return nodeJSON(buf, n.Alias, depth+1)
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := nodeJSON(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			buf.Write(k)
			buf.WriteByte(':')
			if err := nodeJSON(buf, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return err
		}
		if t, ok := v.(time.Time); ok {
			v = t.Format(time.RFC3339Nano)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
		return nil
	}
}

func (s *Server) openapiJSONHandler(_ context.Context, c *app.RequestContext) error {
	b, err := openapiJSON()
	if err != nil {
		return err
	}
	c.Data(http.StatusOK, jsonContentType, b)
	return nil
}

// listKinds answers every plugin's kind with its description; a plugin
// that cannot describe itself right now is listed with the error, and one
// that serves no emitter kind (a guest source) is left out.
func (s *Server) listKinds(ctx context.Context, c *app.RequestContext) error {
	items := []api.Kind{}
	if s.d.Plugins == nil {
		return writeJSON(c, http.StatusOK, api.Items[api.Kind]{Items: items})
	}
	desc, _ := s.d.Plugins.(KindDescriber)
	for _, p := range s.d.Plugins.Plugins() {
		k := api.Kind{Name: p.Name, Version: p.Version, State: p.State}
		if desc != nil {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			d, err := desc.Describe(dctx, p.Name)
			cancel()
			if errors.Is(err, emitter.ErrUnknownKind) {
				continue
			}
			if err != nil {
				k.Error = err.Error()
			} else {
				k = kindOut(d, p.State)
			}
		}
		items = append(items, k)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return writeJSON(c, http.StatusOK, api.Items[api.Kind]{Items: items})
}

// kindOut is a kind's description as the API shows it.
func kindOut(d emitter.Kind, state string) api.Kind {
	k := api.Kind{Name: d.Name, Version: d.Version, Description: d.Description, ConfigSchema: d.ConfigSchema,
		EventTypes: d.EventTypes, State: state}
	for _, c := range d.Commands {
		k.Commands = append(k.Commands, api.Command{Name: c.Name, Description: c.Description})
	}
	return k
}
