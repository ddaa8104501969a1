package bolt

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/emitter"
)

// PutSpec stores (or replaces) an emitter spec, durably.
func (s *Store) PutSpec(ctx context.Context, spec emitter.Spec) error {
	if spec.ID == "" || len(spec.ID) > bbolt.MaxKeySize {
		return fmt.Errorf("%w: emitter id must be 1..%d bytes", ErrInvalid, bbolt.MaxKeySize)
	}
	v, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("bolt: encode spec %q: %w", spec.ID, err)
	}
	return s.writeDirect(ctx, len(v)+len(spec.ID), func(tx *bbolt.Tx, ar *arena) error {
		return tx.Bucket(bktEmitters).Put(ar.str(spec.ID), v)
	})
}

// DeleteSpec removes the spec and its checkpoint, in one transaction.
// The emitter's stream (history and head) is left to DeleteStream, so a
// re-created emitter never reuses a seq. It returns emitter.ErrNotFound
// (wrapped) when no spec had that id; a stray checkpoint is removed all
// the same.
func (s *Store) DeleteSpec(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty emitter id", ErrInvalid)
	}
	var found bool
	err := s.write(ctx, len(id), func(tx *bbolt.Tx, ar *arena) error {
		key := ar.str(id)
		specs := tx.Bucket(bktEmitters)
		found = specs.Get(key) != nil
		if err := specs.Delete(key); err != nil {
			return err
		}
		return tx.Bucket(bktCheckpoints).Delete(key)
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("bolt: delete spec %q: %w", id, emitter.ErrNotFound)
	}
	return nil
}

// ListSpecs returns every stored spec, sorted by CreatedAt then ID. A
// spec that no longer decodes is an error naming its id, not skipped.
func (s *Store) ListSpecs(ctx context.Context) ([]emitter.Spec, error) {
	var out []emitter.Spec
	err := s.viewDirect(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bktEmitters).ForEach(func(k, v []byte) error {
			var sp emitter.Spec
			if err := json.Unmarshal(v, &sp); err != nil {
				return fmt.Errorf("%w: spec %q: %w", ErrCorrupt, k, err)
			}
			out = append(out, sp)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b emitter.Spec) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Checkpoint returns the emitter's durable checkpoint (nil if none).
func (s *Store) Checkpoint(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bktCheckpoints).Get([]byte(id)); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out, err
}
