namespace Escrow.Tests.Domain;

/// <summary>Every alert about an escrow is a typed kind in its outbox, decided by the machine.</summary>
public sealed class AlertTests
{
    private static PendingEffect[] Alerts(EscrowState s) => [.. s.Outbox.Where(e => e.Kind == EffectKind.RaiseAlert)];

    [Fact]
    public void An_alert_effect_carries_its_kind_and_severity_and_only_its_text_in_the_detail()
    {
        var s = AnEscrow.Released();
        var d = s.Decide(new TransferReversed(AnEscrow.TransferId, s.Split.RecipientShare.Minor), s.StatusChangedAt.AddDays(1));

        var alert = Assert.Single(Alerts(d.State));
        Assert.Equal(AlertKind.TransferReversed, alert.Alert);
        Assert.Equal("critical", alert.Alert!.Severity);
        Assert.DoesNotContain("|", alert.Detail, StringComparison.Ordinal);
        Assert.Equal((AlertKind.TransferReversed, alert.Detail), AlertKind.Of(alert));
    }

    [Theory]
    [InlineData("transfer_retries_exhausted|The transfer failed 8 times.", "transfer_retries_exhausted", "critical", "The transfer failed 8 times.")]
    [InlineData("email_failed|NewMessage failed 10 times: timeout", "email_failed", "warning", "NewMessage failed 10 times: timeout")]
    [InlineData("something_new|text", "something_new", "warning", "text")]
    [InlineData("no_text", "no_text", "warning", "")]
    public void An_alert_effect_stored_before_kinds_were_typed_is_read_from_its_detail(string detail, string kind, string severity, string text)
    {
        var (read, readText) = AlertKind.Of(new PendingEffect(7, EffectKind.RaiseAlert, Detail: detail));

        Assert.Equal((kind, severity, text), (read.Name, read.Severity, readText));
    }

    [Fact]
    public void A_refused_payment_event_naming_another_payment_intent_calls_for_a_payment_mismatch_alert_and_changes_nothing()
    {
        var s = AnEscrow.Held();
        var command = new AuthorisationVoided("expired", "pi_someone_else");
        var d = s.Decide(command, s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(Rejection.PaymentIntentMismatch, d.Rejection);

        var alert = EscrowMachine.AlertOnRefusal(s, command, d.Rejection!);

        Assert.Equal(AlertKind.PaymentMismatch, alert?.Kind);
        Assert.Equal("pi_someone_else", alert!.Key);
        Assert.Same(s, d.State);
    }

    [Fact]
    public void A_reversal_an_escrow_does_not_expect_calls_for_one_transfer_reversed_alert_and_its_own_reversal_for_none()
    {
        var held = AnEscrow.Held();
        var outside = new TransferReversed(AnEscrow.TransferId, 1_125);
        var refused = held.Decide(outside, held.StatusChangedAt.AddMinutes(1)).Rejection!;

        Assert.Equal(AlertKind.TransferReversed, EscrowMachine.AlertOnRefusal(held, outside, refused)?.Kind);
        Assert.Null(EscrowMachine.AlertOnRefusal(held, outside, Rejection.AlreadyDone));
        Assert.Null(EscrowMachine.AlertOnRefusal(held, outside, Rejection.DuplicateEvent));
        Assert.Null(EscrowMachine.AlertOnRefusal(held, new AcceptReply(held.Deadline, "email"), Rejection.ReplyTooLate));
    }

    [Fact]
    public void The_same_finding_waiting_to_be_raised_is_not_added_twice_and_waiting_findings_are_bounded()
    {
        var s = AnEscrow.Held();
        var at = s.StatusChangedAt.AddMinutes(1);
        s = s.Then(new AlertRaised(AlertKind.TransferMismatch, "Transfer tr_x is not adopted.", "tr_x"), at);

        Assert.Equal("already_done", s.Decide(new AlertRaised(AlertKind.TransferMismatch, "again", "tr_x"), at).Rejection?.Code);
        for (var i = 1; i < EscrowMachine.AlertsWaitingMax; i++)
        {
            s = s.Then(new AlertRaised(AlertKind.TransferMismatch, "Another.", $"tr_{i}"), at);
        }
        Assert.Equal(EscrowMachine.AlertsWaitingMax, Alerts(s).Length);
        Assert.Equal("alerts_waiting", s.Decide(new AlertRaised(AlertKind.TransferMismatch, "One too many.", "tr_last"), at).Rejection?.Code);
    }

    [Theory]
    [InlineData(RefusedReplyReason.UnknownSender, "reply_from_unknown_sender")]
    [InlineData(RefusedReplyReason.NotAuthenticated, "reply_not_authenticated")]
    public void A_refused_reply_is_alerted_through_the_outbox_and_releases_nothing(RefusedReplyReason reason, string kind)
    {
        var s = AnEscrow.Held();

        var next = s.Then(new ReplyRefused(reason, "message-1", "spf=fail"), s.StatusChangedAt.AddMinutes(5));

        var alert = Assert.Single(Alerts(next), e => e.Alert?.Name == kind);
        Assert.Equal("message-1", alert.AlertKey);
        Assert.Equal(EscrowStatus.Held, next.Status);
        Assert.False(next.Has(EffectKind.CapturePayment));
    }

    [Fact]
    public void A_bounced_new_message_of_a_held_escrow_is_alerted_once_and_any_other_bounce_is_refused()
    {
        var s = AnEscrow.Held();
        var at = s.StatusChangedAt.AddMinutes(5);

        var next = s.Then(new EmailBounced(EmailKind.NewMessage, "alice@example.test", "HardBounce"), at);

        Assert.Equal(AlertKind.RecipientUnreachable, Assert.Single(Alerts(next)).Alert);
        Assert.Equal("already_done", next.Decide(new EmailBounced(EmailKind.NewMessage, "alice@example.test", "HardBounce"), at).Rejection?.Code);
        Assert.Equal("not_allowed_in_status", s.Decide(new EmailBounced(EmailKind.PaymentReceipt, "sender@example.test", "HardBounce"), at).Rejection?.Code);
        Assert.Equal("not_allowed_in_status", s.Decide(new EmailBounced(null, "x@example.test", "HardBounce"), at).Rejection?.Code);
    }
}
