namespace Escrow.Tests.Domain;

/// <summary>What the stuck-escrow monitor reads of an escrow's outbox and its failed transfer, and the rules it applies.</summary>
public sealed class EffectAgeTests
{
    private static readonly DateTimeOffset T0 = AnEscrow.T0;

    [Fact]
    public void Staging_dates_only_the_effects_the_change_added()
    {
        var created = AnEscrow.AwaitingPayment();
        Assert.Equal(T0, Assert.Single(created.Outbox).AddedAt);

        var held = AnEscrow.Held();
        Assert.Contains(held.Outbox, e => e.AddedAt is null);
        var staged = EffectAge.Stamp(held, T0.AddMinutes(1));
        Assert.All(staged.Outbox, e => Assert.Equal(T0.AddMinutes(1), e.AddedAt));

        var later = EffectAge.Stamp(staged.Then(new AcceptReply(T0.AddHours(2), "email", "Slides attached."), T0.AddHours(2)), T0.AddHours(2));
        Assert.All(later.Outbox.Where(e => staged.Outbox.Any(x => x.Id == e.Id)), e => Assert.Equal(T0.AddMinutes(1), e.AddedAt));
        Assert.All(later.Outbox.Where(e => staged.Outbox.All(x => x.Id != e.Id)), e => Assert.Equal(T0.AddHours(2), e.AddedAt));
        Assert.Equal(T0.AddMinutes(1), EffectAge.WaitingSince(later));
    }

    [Fact]
    public void The_outbox_seq_moves_on_when_an_effect_completes_without_history_and_never_goes_back()
    {
        var s = EffectAge.Stamp(AnEscrow.Released(), T0.AddHours(3));
        var seqs = new List<int> { EffectAge.Seq(s) };
        var history = s.History.Length;
        while (!s.Outbox.IsEmpty)
        {
            s = s.Then(new EffectCompleted(s.Outbox[0].Id), T0.AddHours(3));
            seqs.Add(EffectAge.Seq(s));
        }

        Assert.Equal(history, s.History.Length);
        Assert.Equal(seqs.Order(), seqs);
        Assert.Equal(seqs.Count, seqs.Distinct().Count());
        Assert.Null(EffectAge.WaitingSince(s));
        Assert.Equal(s.NextEffectId, EffectAge.Seq(s));
    }

    [Fact]
    public void Money_an_open_dispute_holds_is_not_counted_as_waiting()
    {
        var captured = EffectAge.Stamp(AnEscrow.Captured(), T0.AddHours(3));
        Assert.True(captured.Has(EffectKind.TransferShare));

        Assert.Equal(T0.AddHours(3), EffectAge.WaitingSince(captured));
        Assert.Null(EffectAge.WaitingSince(captured with { DisputeOpen = true, Outbox = [.. captured.Outbox.Where(e => e.Kind == EffectKind.TransferShare)] }));
    }

    [Fact]
    public void A_failed_transfer_is_projected_as_exhausted_only_once_no_retry_is_scheduled()
    {
        var s = AnEscrow.TransferFailed();
        Assert.False(EscrowViews.Projection(s).TransferRetriesExhausted);
        var now = s.StatusChangedAt;
        while (s.NextTransferAttemptAt is { } due)
        {
            now = due;
            s = s.Then(new TransferRetryDue(), now);
            s = s.Then(new TransferRejected(s.EffectId(EffectKind.TransferShare), "balance_insufficient", Permanent: false), now);
        }

        Assert.Equal(EscrowStatus.TransferFailed, s.Status);
        Assert.Equal(EscrowPolicy.Default.TransferRetry.MaxAttempts, s.TransferFailures);
        Assert.True(EscrowViews.Projection(s).TransferRetriesExhausted);
    }

    [Fact]
    public void Each_stuck_condition_starts_at_its_threshold_and_is_named_apart()
    {
        var rules = StuckRules.Default;
        var at = T0.AddDays(10);
        var exhausted = Projection("transfer_failed", at) with { TransferRetriesExhausted = true };
        var retrying = Projection("transfer_failed", at);
        var waiting = Projection("released", at.AddDays(-3)) with { EffectWaitingSince = at };

        Assert.Equal([StuckRules.TransferRetriesExhausted], rules.Conditions(exhausted, at.AddSeconds(1)).Select(c => c.Name));
        Assert.Empty(rules.Conditions(retrying, at.AddHours(23)));
        Assert.Equal(["transfer_failed", StuckRules.TransferRetriesExhausted], rules.Conditions(exhausted, at.AddHours(25)).Select(c => c.Name));
        Assert.Empty(rules.Conditions(waiting, at.AddMinutes(59)));
        var effect = Assert.Single(rules.Conditions(waiting, at.AddMinutes(61)));
        Assert.Equal((StuckRules.EffectWaitingCondition, at), (effect.Name, effect.Since));
        Assert.Empty((rules with { EffectWaiting = TimeSpan.FromHours(2) }).Conditions(waiting, at.AddMinutes(61)));
    }

    private static EscrowProjection Projection(string status, DateTimeOffset changedAt) => new(
        Guid.NewGuid(), "alice", status, 15_00, "EUR", 11_25, 3_75, "pi_1", "ch_1", null, T0, T0.AddDays(1), T0.AddDays(1),
        changedAt, 1, false, 3);
}
