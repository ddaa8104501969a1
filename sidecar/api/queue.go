package api

import "encoding/json"

// QueueMessage is a queued message as the queue API (Zaqar v2) shows it,
// over REST and in WebSocket deliveries. ClaimID is set when claimed.
type QueueMessage struct {
	ID      string          `json:"id"`
	Href    string          `json:"href"`
	TTL     int64           `json:"ttl"` // seconds
	Age     int64           `json:"age"` // seconds since posted
	Body    json.RawMessage `json:"body"`
	ClaimID string          `json:"claim_id,omitempty"`
}

// QueueDelivery is the body of a message_delivery frame: messages a
// subscription claimed for its consumer, which deletes each with its
// claim (at-least-once: what is not deleted comes back when the claim
// expires).
type QueueDelivery struct {
	QueueName      string         `json:"queue_name"`
	ClaimID        string         `json:"claim_id"`
	SubscriptionID string         `json:"subscription_id"`
	Messages       []QueueMessage `json:"messages"`
}
