package webhook

import (
	"encoding/json"
	"testing"
)

func TestEventTypeHelpers(t *testing.T) {
	tests := []struct {
		typ      EventType
		known    bool
		family   Family
		outcome  Outcome
		terminal bool
	}{
		{BatchSucceeded, true, FamilyBatch, OutcomeSucceeded, true},
		{BatchFailed, true, FamilyBatch, OutcomeFailed, true},
		{BatchExpired, true, FamilyBatch, OutcomeExpired, true},
		{BatchCancelled, true, FamilyBatch, OutcomeCancelled, true},
		{InteractionRequiresAction, true, FamilyInteraction, OutcomeNeedsAction, false},
		{InteractionCompleted, true, FamilyInteraction, OutcomeSucceeded, true},
		{InteractionFailed, true, FamilyInteraction, OutcomeFailed, true},
		{InteractionCancelled, true, FamilyInteraction, OutcomeCancelled, true},
		{VideoGenerated, true, FamilyVideo, OutcomeSucceeded, true},
		{"batch.completed", false, FamilyUnknown, OutcomeUnknown, false},
		{"", false, FamilyUnknown, OutcomeUnknown, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			if got := tt.typ.Known(); got != tt.known {
				t.Errorf("Known() = %v, want %v", got, tt.known)
			}
			if got := tt.typ.Family(); got != tt.family {
				t.Errorf("Family() = %q, want %q", got, tt.family)
			}
			if got := tt.typ.Outcome(); got != tt.outcome {
				t.Errorf("Outcome() = %q, want %q", got, tt.outcome)
			}
			if got := tt.typ.Outcome().Terminal(); got != tt.terminal {
				t.Errorf("Outcome().Terminal() = %v, want %v", got, tt.terminal)
			}
		})
	}
}

func TestErrorCodeUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    ErrorCode
		wantInt int64
		isInt   bool
		wantErr bool
	}{
		{in: `3`, want: "3", wantInt: 3, isInt: true},
		{in: `-12`, want: "-12", wantInt: -12, isInt: true},
		{in: `2.5`, want: "2.5"},
		{in: `"INVALID_ARGUMENT"`, want: "INVALID_ARGUMENT"},
		{in: `"429"`, want: "429", wantInt: 429, isInt: true},
		{in: `null`, want: ""},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Data
			err := json.Unmarshal([]byte(`{"error_code":`+tt.in+`}`), &d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if d.ErrorCode != tt.want {
				t.Errorf("ErrorCode = %q, want %q", d.ErrorCode, tt.want)
			}
			n, ok := d.ErrorCode.Int()
			if ok != tt.isInt || n != tt.wantInt {
				t.Errorf("Int() = %d, %v, want %d, %v", n, ok, tt.wantInt, tt.isInt)
			}
		})
	}
}
