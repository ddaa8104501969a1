package queueapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/api"
)

func messagesOut(q string, ms []queue.Message, now time.Time) []api.QueueMessage {
	out := make([]api.QueueMessage, len(ms))
	for i, m := range ms {
		out[i] = api.QueueMessage{ID: m.ID, Href: msgHref(q, m.ID, m.ClaimID), TTL: int64(m.TTL / time.Second),
			Age: age(now, m.Created), Body: m.Body, ClaimID: m.ClaimID}
	}
	return out
}

type msgIn struct {
	TTL  *int64          `json:"ttl"`
	Body json.RawMessage `json:"body"`
}

type postParams struct {
	QueueName string  `json:"queue_name"`
	Messages  []msgIn `json:"messages"`
}

func opMessagePost(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p postParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	msgs := make([]queue.NewMessage, len(p.Messages))
	for i, m := range p.Messages {
		ttl, err := secs("", m.TTL)
		if err != nil {
			// Named only on failure: this runs for every posted message.
			return 0, nil, secsErr(fmt.Sprintf("messages[%d].ttl", i), m.TTL)
		}
		if len(m.Body) == 0 || string(m.Body) == "null" {
			return 0, nil, queue.Invalid(fmt.Sprintf("messages[%d].body", i), "is required")
		}
		msgs[i] = queue.NewMessage{Body: m.Body, TTL: ttl}
	}
	ids, err := api.q.Post(ctx, w.key(p.QueueName), w.clientID, msgs)
	if err != nil {
		return 0, nil, err
	}
	// Queue names are [a-zA-Z0-9_-] and ids hex: nothing to escape.
	size := 40
	for _, id := range ids {
		size += 2*len(id) + len(p.QueueName) + 28
	}
	b := encoded(outBuf(size))
	b = append(b, `{"resources":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHref(append(b, '"'), p.QueueName, id, "")
		b = append(b, '"')
	}
	b = append(b, `],"message_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), id...), '"')
	}
	return http.StatusCreated, append(b, "]}"...), nil
}

func appendHref(b []byte, q, id, claim string) []byte {
	b = append(append(append(append(b, "/v2/queues/"...), q...), "/messages/"...), id...)
	if claim != "" {
		b = append(append(b, "?claim_id="...), claim...)
	}
	return b
}

// appendMessages appends ms as a JSON array of api.QueueMessage, with the bodies
// copied as stored (they were validated when posted).
func appendMessages(b []byte, q string, ms []queue.Message, now time.Time) []byte {
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, `{"id":"`...), m.ID...), `","href":"`...)
		b = appendHref(b, q, m.ID, m.ClaimID)
		b = strconv.AppendInt(append(b, `","ttl":`...), int64(m.TTL/time.Second), 10)
		b = strconv.AppendInt(append(b, `,"age":`...), age(now, m.Created), 10)
		b = append(append(b, `,"body":`...), m.Body...)
		if m.ClaimID != "" {
			b = append(append(append(b, `,"claim_id":"`...), m.ClaimID...), '"')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// claimBody is a claim as claim_create and deliveries show it.
func claimBody(b []byte, q, claimID, subID string, ms []queue.Message, now time.Time) []byte {
	b = append(append(append(b, `{"claim_id":"`...), claimID...), `","href":"`...)
	b = append(append(append(append(b, "/v2/queues/"...), q...), "/claims/"...), claimID...)
	b = append(append(append(b, `","queue_name":"`...), q...), '"')
	if subID != "" {
		b = append(append(append(b, `,"subscription_id":"`...), subID...), '"')
	}
	b = appendMessages(append(b, `,"messages":`...), q, ms, now)
	return append(b, '}')
}

type listParams struct {
	QueueName      string `json:"queue_name"`
	Marker         string `json:"marker"`
	Limit          int    `json:"limit"`
	Echo           bool   `json:"echo"`
	IncludeClaimed bool   `json:"include_claimed"`
}

func opMessageList(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p listParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	page, err := api.q.List(ctx, w.key(p.QueueName), queue.ListOptions{
		Marker: p.Marker, Limit: p.Limit, Echo: p.Echo, IncludeClaimed: p.IncludeClaimed, ClientID: w.clientID,
	})
	if err != nil {
		return 0, nil, err
	}
	marker := page.Marker
	if marker == "" {
		marker = p.Marker
	}
	v := url.Values{"marker": {marker}, "echo": {strconv.FormatBool(p.Echo)},
		"include_claimed": {strconv.FormatBool(p.IncludeClaimed)}}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	return http.StatusOK, map[string]any{
		"messages": messagesOut(p.QueueName, page.Messages, api.q.Now()),
		"links":    []link{{Rel: "next", Href: queueHref(p.QueueName) + "/messages?" + v.Encode()}},
	}, nil
}

type idsParams struct {
	QueueName  string   `json:"queue_name"`
	MessageID  string   `json:"message_id"`
	ClaimID    string   `json:"claim_id"`
	MessageIDs []string `json:"message_ids"`
	ClaimIDs   []string `json:"claim_ids"`
	Pop        int      `json:"pop"`
}

func opMessageGet(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p idsParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	if p.MessageID == "" {
		return 0, nil, queue.Invalid("message_id", "is required")
	}
	ms, err := api.q.Get(ctx, w.key(p.QueueName), w.clientID, []string{p.MessageID})
	if err != nil {
		return 0, nil, err
	}
	if len(ms) == 0 {
		return 0, nil, fmt.Errorf("%w: %s", queue.ErrMessageNotFound, p.MessageID)
	}
	return http.StatusOK, messagesOut(p.QueueName, ms, api.q.Now())[0], nil
}

func opMessageGetMany(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p idsParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	ms, err := api.q.Get(ctx, w.key(p.QueueName), w.clientID, p.MessageIDs)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"messages": messagesOut(p.QueueName, ms, api.q.Now())}, nil
}

func opMessageDelete(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p idsParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	if p.MessageID == "" {
		return 0, nil, queue.Invalid("message_id", "is required")
	}
	var claims []string
	if p.ClaimID != "" {
		claims = []string{p.ClaimID}
	}
	return http.StatusNoContent, nil, api.q.Delete(ctx, w.key(p.QueueName), w.clientID, []string{p.MessageID}, claims)
}

func opMessageDeleteMany(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p idsParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	k := w.key(p.QueueName)
	switch {
	case p.Pop != 0 && len(p.MessageIDs) > 0:
		return 0, nil, queue.Invalid("pop", "cannot be combined with message_ids")
	case p.Pop != 0:
		ms, err := api.q.Pop(ctx, k, w.clientID, p.Pop)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"messages": messagesOut(p.QueueName, ms, api.q.Now())}, nil
	}
	claims := p.ClaimIDs
	if p.ClaimID != "" {
		claims = append(claims, p.ClaimID)
	}
	return http.StatusNoContent, nil, api.q.Delete(ctx, k, w.clientID, p.MessageIDs, claims)
}

type claimParams struct {
	QueueName string `json:"queue_name"`
	ClaimID   string `json:"claim_id"`
	TTL       *int64 `json:"ttl"`
	Grace     *int64 `json:"grace"`
	Limit     int    `json:"limit"`
}

func (p *claimParams) durations() (ttl, grace time.Duration, err error) {
	if ttl, err = secs("ttl", p.TTL); err != nil {
		return 0, 0, err
	}
	// A grace of 0 is valid in Zaqar; the service reads 0 as "default",
	// so an explicit 0 is passed as the smallest positive grace.
	if p.Grace != nil && *p.Grace == 0 {
		return ttl, time.Nanosecond, nil
	}
	grace, err = secs("grace", p.Grace)
	return ttl, grace, err
}

func opClaimCreate(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p claimParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	ttl, grace, err := p.durations()
	if err != nil {
		return 0, nil, err
	}
	c, err := api.q.Claim(ctx, w.key(p.QueueName), w.clientID, queue.ClaimOptions{TTL: ttl, Grace: grace, Limit: p.Limit})
	if err != nil {
		return 0, nil, err
	}
	if c.ID == "" {
		return http.StatusNoContent, nil, nil
	}
	return http.StatusCreated, encoded(claimBody(make([]byte, 0, 4096), p.QueueName, c.ID, "", c.Messages, api.q.Now())), nil
}

func opClaimGet(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p claimParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	c, err := api.q.GetClaim(ctx, w.key(p.QueueName), w.clientID, p.ClaimID)
	if err != nil {
		return 0, nil, err
	}
	now := api.q.Now()
	return http.StatusOK, map[string]any{
		"id": c.ID, "href": claimHref(p.QueueName, c.ID), "ttl": int64(c.TTL / time.Second),
		"age": age(now, c.Created), "messages": messagesOut(p.QueueName, c.Messages, now),
	}, nil
}

func opClaimUpdate(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p claimParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	ttl, grace, err := p.durations()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, api.q.RenewClaim(ctx, w.key(p.QueueName), w.clientID, p.ClaimID, ttl, grace)
}

func opClaimDelete(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p claimParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, api.q.ReleaseClaim(ctx, w.key(p.QueueName), w.clientID, p.ClaimID)
}

func claimHref(q, id string) string { return "/v2/queues/" + q + "/claims/" + id }
