using Orleans.Serialization;
using Orleans.Storage;

namespace Escrow.Tests.Grains;

/// <summary>Persisted state goes through Orleans' binary storage serializer (pitfall P3): it must come back whole.</summary>
public sealed class StateSerializationTests
{
    private static readonly OrleansGrainStorageSerializer Serializer = new(
        new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(EscrowState).Assembly)).BuildServiceProvider().GetRequiredService<Serializer>());

    [Fact]
    public void An_escrow_state_with_outbox_and_history_round_trips_through_the_storage_serializer()
    {
        var now = new DateTimeOffset(2026, 11, 27, 9, 0, 0, TimeSpan.Zero);
        var state = EscrowMachine.Create(new NewEscrow(Guid.NewGuid(), "alice", "bob@example.com", "Subject", "A message body", Money.Eur(1_500), 7_500,
            TimeSpan.FromHours(24), TimeSpan.FromMinutes(15), TimeSpan.FromHours(1), "AB", "reply-hash", "access-hash", "0a1b", "pm_card_visa"), now);
        var machine = new EscrowMachine(EscrowPolicy.Default);
        state = machine.Decide(state, new PaymentIntentCreated(state.Outbox[0].Id, "pi_1", "secret", "requires_capture", 1_500, "EUR"), now).State;
        state = machine.Decide(state, new AcceptReply(now, "email", "An answer"), now).State;
        state = Enumerable.Range(1, EscrowState.AppliedEventsMax + 2).Aggregate(state, (s, i) => s.WithApplied($"evt_{i}"));

        var copy = Serializer.Deserialize<EscrowState>(Serializer.Serialize(state))!;

        Assert.Equal(state.Status, copy.Status);
        Assert.Equal(state.Amount, copy.Amount);
        Assert.Equal(state.Split, copy.Split);
        Assert.Equal(state.Outbox.ToArray(), copy.Outbox.ToArray());
        Assert.Equal(state.History.ToArray(), copy.History.ToArray());
        Assert.Equal(state.ReplyDeadline, copy.ReplyDeadline);
        Assert.Equal(state.Reply, copy.Reply);
        // The last applied events, bounded: the two oldest are gone.
        Assert.Equal(Enumerable.Range(3, EscrowState.AppliedEventsMax).Select(i => $"evt_{i}"), copy.AppliedEvents);
        Assert.True(copy.HasApplied($"evt_{EscrowState.AppliedEventsMax + 2}"));
        Assert.False(copy.HasApplied("evt_1"));
        Assert.Equal(state with { Outbox = copy.Outbox, History = copy.History, AppliedEvents = copy.AppliedEvents }, copy);
    }

    [Fact]
    public void Recipient_and_breaker_states_round_trip_through_the_storage_serializer()
    {
        var recipient = new RecipientState
        {
            Exists = true, Email = "a@example.com", DisplayName = "A", BasePriceMinor = 1_000, Currency = "EUR", RevenueShareBps = 8_000, DailyLimit = 3,
            StripeAccountId = "acct_1", PayoutsEnabled = true,
            Reservations = [new SlotReservation(Guid.NewGuid(), new DateOnly(2026, 11, 27), 1_500, 8_000, "EUR")],
            AwaitingPayoutSetup = [Guid.NewGuid()],
        };
        var breaker = new CircuitBreakerState { WindowStartedAt = DateTimeOffset.UnixEpoch, Permits = System.Collections.Immutable.ImmutableDictionary<Guid, long>.Empty.Add(Guid.NewGuid(), 100), Tripped = true, Trips = 2 };

        var recipientCopy = Serializer.Deserialize<RecipientState>(Serializer.Serialize(recipient))!;
        var breakerCopy = Serializer.Deserialize<CircuitBreakerState>(Serializer.Serialize(breaker))!;

        Assert.Equal(recipient.Reservations.ToArray(), recipientCopy.Reservations.ToArray());
        Assert.Equal(recipient.AwaitingPayoutSetup.ToArray(), recipientCopy.AwaitingPayoutSetup.ToArray());
        Assert.Equal(recipient with { Reservations = recipientCopy.Reservations, AwaitingPayoutSetup = recipientCopy.AwaitingPayoutSetup }, recipientCopy);
        Assert.Equal(breaker.Permits, breakerCopy.Permits);
        Assert.Equal(breaker.Trips, breakerCopy.Trips);
        Assert.True(breakerCopy.Tripped);
    }
}
