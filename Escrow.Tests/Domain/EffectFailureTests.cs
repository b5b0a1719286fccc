namespace Escrow.Tests.Domain;

/// <summary>
/// An effect that could not be done for now is tried again with bounded backoff, decided by the machine: an e-mail that
/// keeps failing is dropped with one alert, a money movement keeps trying at the longest delay with one alert.
/// </summary>
public sealed class EffectFailureTests
{
    private static readonly RetryPolicy Retry = EscrowPolicy.Default.EffectRetry;

    /// <summary>Fails the effect <paramref name="times"/> times, each at its next try, and returns the state and the last failure's time.</summary>
    private static (EscrowState State, DateTimeOffset At) FailRepeatedly(EscrowState s, int effectId, int times, string error = "timeout")
    {
        var now = s.StatusChangedAt.AddSeconds(1);
        for (var i = 0; i < times; i++)
        {
            now = s.Outbox.Single(e => e.Id == effectId).NotBefore ?? now;
            s = s.Then(new EffectFailed(effectId, error, Permanent: false), now);
        }
        return (s, now);
    }

    /// <summary>The capture of a replied escrow failed <paramref name="times"/> times: the state, the capture effect and the last failure's time.</summary>
    private static (EscrowState State, PendingEffect Capture, DateTimeOffset At) CaptureFailedRepeatedly(int times)
    {
        var s = AnEscrow.Processing();
        var capture = s.EffectId(EffectKind.CapturePayment);
        var (failed, at) = FailRepeatedly(s, capture, times);
        return (failed, failed.Outbox.Single(e => e.Id == capture), at);
    }

    private static PendingEffect[] Alerts(EscrowState s, string kind) =>
        [.. s.Outbox.Where(e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == kind)];

    [Fact]
    public void A_failure_for_now_schedules_the_next_try_after_the_backoff_and_records_the_error()
    {
        var s = AnEscrow.Processing();
        var capture = s.Outbox.Single(e => e.Kind == EffectKind.CapturePayment);
        var now = s.StatusChangedAt.AddSeconds(1);

        var next = s.Then(new EffectFailed(capture.Id, "rate_limit", Permanent: false), now);

        var retried = next.Outbox.Single(e => e.Id == capture.Id);
        Assert.Equal(1, retried.Attempts);
        Assert.Equal(now + Retry.First, retried.NotBefore);
        Assert.Equal("rate_limit", next.LastError);
        Assert.Equal(s.Status, next.Status);
        Assert.Equal(s.History, next.History);
    }

    [Fact]
    public void A_money_movement_tries_again_under_its_next_key_and_an_email_under_the_same()
    {
        var s = AnEscrow.Held();
        var capture = AnEscrow.Processing();
        var now = s.StatusChangedAt.AddSeconds(1);

        var email = s.EmailEffectId(EmailKind.NewMessage);
        var afterEmail = s.Then(new EffectFailed(email, "email_transient", Permanent: false), now);
        var afterCapture = capture.Then(new EffectFailed(capture.EffectId(EffectKind.CapturePayment), "timeout", Permanent: false), now);

        Assert.Equal(0, afterEmail.Outbox.Single(e => e.Id == email).KeyAttempt);
        Assert.Equal(1, afterCapture.Outbox.Single(e => e.Kind == EffectKind.CapturePayment).KeyAttempt);
    }

    [Fact]
    public void The_delay_grows_with_each_failure_up_to_the_longest()
    {
        var (_, effect, at) = CaptureFailedRepeatedly(Retry.MaxAttempts + 2);

        Assert.Equal(Retry.MaxAttempts + 2, effect.Attempts);
        Assert.Equal(at + Retry.Max, effect.NotBefore);
    }

    [Fact]
    public void An_email_that_keeps_failing_is_dropped_with_one_email_failed_alert_and_blocks_nothing()
    {
        var s = AnEscrow.Held();
        var email = s.EmailEffectId(EmailKind.NewMessage);

        var (beforeLast, _) = FailRepeatedly(s, email, Retry.MaxAttempts - 1);
        Assert.Contains(beforeLast.Outbox, e => e.Id == email);
        Assert.Empty(Alerts(beforeLast, "email_failed"));

        var (failed, _) = FailRepeatedly(s, email, Retry.MaxAttempts);

        Assert.DoesNotContain(failed.Outbox, e => e.Id == email);
        var alert = Assert.Single(Alerts(failed, "email_failed"));
        Assert.Contains($"NewMessage failed {Retry.MaxAttempts} times: timeout", alert.Detail, StringComparison.Ordinal);
        Assert.Equal(EscrowStatus.Held, failed.Status);
    }

    [Fact]
    public void A_money_movement_that_keeps_failing_keeps_trying_at_the_longest_delay_with_one_effect_retrying_alert()
    {
        var (failed, effect, at) = CaptureFailedRepeatedly(Retry.MaxAttempts + 3);

        Assert.Equal(at + Retry.Max, effect.NotBefore);
        var alert = Assert.Single(Alerts(failed, "effect_retrying"));
        Assert.Contains("CapturePayment", alert.Detail, StringComparison.Ordinal);
        Assert.Contains($"failed {Retry.MaxAttempts} times: timeout", alert.Detail, StringComparison.Ordinal);
        Assert.False(failed.NeedsOperator);
    }

    [Fact]
    public void A_failure_of_an_effect_the_escrow_does_not_have_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.Held();

        var decision = s.Decide(new EffectFailed(9_999, "timeout", Permanent: false), s.StatusChangedAt.AddSeconds(1));

        decision.AssertRefused("unknown_effect", unchanged: s);
    }

    [Fact]
    public void A_failure_is_decided_while_a_dispute_is_open()
    {
        var s = AnEscrow.Held();
        s = s.Then(new DisputeOpened("dp_1"), s.StatusChangedAt.AddMinutes(1));
        var email = s.EmailEffectId(EmailKind.NewMessage);

        var next = s.Then(new EffectFailed(email, "email_transient", Permanent: false), s.StatusChangedAt.AddMinutes(2));

        Assert.Equal(1, next.Outbox.Single(e => e.Id == email).Attempts);
    }
}
