package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// CheckClientID validates a Client-ID header (a UUID).
func CheckClientID(id string) error {
	if id == "" {
		return invalid("Client-ID", "header is required on message operations (a UUID)")
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return invalid("Client-ID", "must be a UUID in canonical form, got %q", truncate(id, 80))
	}
	return nil
}

// Post stores msgs durably (a TTL of 0 takes the queue's default) and
// wakes k's watchers. It returns the new ids, in order.
func (s *Service) Post(ctx context.Context, k Key, clientID string, msgs []NewMessage) ([]string, error) {
	if s.closed() {
		return nil, ErrClosed
	}
	if err := CheckKey(k); err != nil {
		return nil, err
	}
	if err := CheckClientID(clientID); err != nil {
		return nil, err
	}
	if err := checkCount("messages", len(msgs), s.l.MaxMessagesPerPost); err != nil {
		return nil, err
	}
	c, err := s.conf(ctx, k)
	if err != nil {
		return nil, err
	}
	total := 0
	for i := range msgs {
		m := &msgs[i]
		if len(m.Body) == 0 {
			return nil, invalid(fmt.Sprintf("messages[%d].body", i), "is required")
		}
		total += len(m.Body)
		if m.TTL == 0 {
			m.TTL = c.defaultTTL
		}
		if m.TTL < s.l.MinMessageTTL || m.TTL > s.l.MaxMessageTTL {
			// The field name is built only when it is needed: this loop
			// runs for every posted message.
			return nil, checkRange(fmt.Sprintf("messages[%d].ttl", i), m.TTL, s.l.MinMessageTTL, s.l.MaxMessageTTL)
		}
	}
	if total > c.maxPost {
		return nil, fmt.Errorf("%w: message bodies total %d bytes, the limit is %d", ErrTooLarge, total, c.maxPost)
	}
	ids, err := s.d.PostMessages(ctx, k, clientID, msgs, s.now())
	if err != nil {
		return nil, err
	}
	s.wake(k)
	return ids, nil
}

// List returns a page of k's messages.
func (s *Service) List(ctx context.Context, k Key, o ListOptions) (Page, error) {
	if err := s.checkMsgOp(k, o.ClientID); err != nil {
		return Page{}, err
	}
	if o.Limit == 0 {
		o.Limit = min(10, s.l.MaxMessagesPerPage)
	}
	if err := checkCount("limit", o.Limit, s.l.MaxMessagesPerPage); err != nil {
		return Page{}, err
	}
	return s.d.ListMessages(ctx, k, o, s.now())
}

// Get returns the live messages among ids.
func (s *Service) Get(ctx context.Context, k Key, clientID string, ids []string) ([]Message, error) {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return nil, err
	}
	if err := checkCount("ids", len(ids), s.l.MaxMessagesPerPage); err != nil {
		return nil, err
	}
	return s.d.GetMessages(ctx, k, ids, s.now())
}

// Delete deletes ids; claimed ones need their claim among claimIDs.
func (s *Service) Delete(ctx context.Context, k Key, clientID string, ids, claimIDs []string) error {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return err
	}
	if err := checkCount("ids", len(ids), s.l.MaxMessagesPerPage); err != nil {
		return err
	}
	if len(claimIDs) > len(ids) {
		return invalid("claim_ids", "at most one claim per message")
	}
	return s.d.DeleteMessages(ctx, k, ids, claimIDs, s.now())
}

// Pop deletes and returns up to limit unclaimed messages.
func (s *Service) Pop(ctx context.Context, k Key, clientID string, limit int) ([]Message, error) {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return nil, err
	}
	if err := checkCount("pop", limit, s.l.MaxMessagesPerClaim); err != nil {
		return nil, err
	}
	return s.d.PopMessages(ctx, k, limit, s.now())
}

// Claim claims up to o.Limit messages (zero fields take the defaults).
// A Claim without ID means nothing was available.
func (s *Service) Claim(ctx context.Context, k Key, clientID string, o ClaimOptions) (Claim, error) {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return Claim{}, err
	}
	if o.TTL == 0 {
		o.TTL = s.l.DefaultClaimTTL
	}
	if o.Grace == 0 {
		o.Grace = s.l.DefaultClaimGrace
	}
	if o.Limit == 0 {
		o.Limit = min(10, s.l.MaxMessagesPerClaim)
	}
	if err := s.checkClaim(o.TTL, o.Grace); err != nil {
		return Claim{}, err
	}
	if err := checkCount("limit", o.Limit, s.l.MaxMessagesPerClaim); err != nil {
		return Claim{}, err
	}
	return s.d.CreateClaim(ctx, k, o, s.now())
}

// GetClaim returns an active claim and the messages it holds.
func (s *Service) GetClaim(ctx context.Context, k Key, clientID, id string) (Claim, error) {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return Claim{}, err
	}
	return s.d.GetClaim(ctx, k, id, s.now())
}

// RenewClaim restarts a claim's ttl (zero ttl or grace: the defaults).
func (s *Service) RenewClaim(ctx context.Context, k Key, clientID, id string, ttl, grace time.Duration) error {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return err
	}
	if ttl == 0 {
		ttl = s.l.DefaultClaimTTL
	}
	if grace == 0 {
		grace = s.l.DefaultClaimGrace
	}
	if err := s.checkClaim(ttl, grace); err != nil {
		return err
	}
	return s.d.RenewClaim(ctx, k, id, ttl, grace, s.now())
}

// ReleaseClaim frees a claim's messages.
func (s *Service) ReleaseClaim(ctx context.Context, k Key, clientID, id string) error {
	if err := s.checkMsgOp(k, clientID); err != nil {
		return err
	}
	err := s.d.ReleaseClaim(ctx, k, id, s.now())
	if err == nil {
		s.wake(k) // released messages are claimable again
	}
	return err
}

func (s *Service) checkMsgOp(k Key, clientID string) error {
	if s.closed() {
		return ErrClosed
	}
	if err := CheckKey(k); err != nil {
		return err
	}
	return CheckClientID(clientID)
}

func (s *Service) checkClaim(ttl, grace time.Duration) error {
	if err := checkRange("ttl", ttl, s.l.MinClaimTTL, s.l.MaxClaimTTL); err != nil {
		return err
	}
	return checkRange("grace", grace, s.l.MinClaimGrace, s.l.MaxClaimGrace)
}

// Watch returns a channel closed at k's next post or claim release. Claims
// that simply expire do not close it: watchers also poll.
func (s *Service) Watch(k Key) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.watches[k]
	if !ok {
		ch = make(chan struct{})
		s.watches[k] = ch
	}
	return ch
}

func (s *Service) wake(k Key) {
	s.mu.Lock()
	if ch, ok := s.watches[k]; ok {
		close(ch)
		delete(s.watches, k)
	}
	s.mu.Unlock()
}
