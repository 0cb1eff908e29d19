package agent

import "context"

// budget bounds concurrent list tasks: at most total across the agent
// (tasks.totalBudget) and at most perAccount within one account
// (tasks.budgetPerAccount). Watches do not hold a slot.
type budget struct {
	total   chan struct{} // shared by every account
	account chan struct{} // this account's
}

func newBudget(total chan struct{}, perAccount int) *budget {
	return &budget{total: total, account: make(chan struct{}, perAccount)}
}

// acquire takes an account slot, then a total slot, or returns ctx's error.
func (b *budget) acquire(ctx context.Context) error {
	select {
	case b.account <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case b.total <- struct{}{}:
		return nil
	case <-ctx.Done():
		<-b.account
		return ctx.Err()
	}
}

func (b *budget) release() {
	<-b.total
	<-b.account
}
