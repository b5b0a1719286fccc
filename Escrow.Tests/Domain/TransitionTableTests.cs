using System.Text.RegularExpressions;

namespace Escrow.Tests.Domain;

/// <summary>Every (status, command) pair has a decided outcome; a rejection is named and changes nothing.</summary>
public sealed partial class TransitionTableTests
{
    /// <summary>An effect id that no escrow has, used when the state has no effect of the kind a command completes.</summary>
    private const int NoSuchEffect = 9_999;

    public static readonly string[] CommandNames =
    [
        "payment_intent_created", "payment_authorised", "payment_failed", "authorisation_voided", "accept_reply",
        "captured", "capture_rejected", "transferred", "transfer_rejected", "recipient_not_ready",
        "recipient_payouts_enabled", "payment_intent_cancelled", "payment_refunded", "refund_permit_answered",
        "effect_completed", "unpaid_expired", "deadline_passed", "deadline_reminder_due", "transfer_retry_due",
        "refund_permit_retry_due", "operator_release", "operator_refund", "operator_retry_transfer",
        "operator_approve_refund", "dispute_opened", "operator_resolve_dispute", "transfer_reversed",
        "transfer_reported", "payout_check_due", "reply_awaited", "retry_payment",
        "effect_failed", "effect_failed_for_good", "transfer_reversal_made", "dispute_closed", "erase_personal_data",
        "alert_raised", "reply_refused", "email_bounced",
    ];

    /// <summary>One representative of every command record, completing the state's own effects where it can.</summary>
    internal static EscrowCommand Command(string name, EscrowState s, DateTimeOffset now)
    {
        int Effect(EffectKind kind) => s.Outbox.FirstOrDefault(e => e.Kind == kind)?.Id ?? NoSuchEffect;
        var amount = s.Amount.Minor;
        var currency = s.Amount.Currency.Code;
        EscrowCommand command = name switch
        {
            "payment_intent_created" => new PaymentIntentCreated(Effect(EffectKind.CreatePaymentIntent), s.PaymentIntentId ?? AnEscrow.PaymentIntentId, "secret_1", "requires_capture", amount, currency),
            "payment_authorised" => new PaymentAuthorised(s.PaymentIntentId ?? AnEscrow.PaymentIntentId, amount, currency),
            "payment_failed" => new PaymentFailed("card_declined", Effect(EffectKind.CreatePaymentIntent)),
            "authorisation_voided" => new AuthorisationVoided("expired"),
            "accept_reply" => new AcceptReply(now, "email", "Here you go."),
            "captured" => new Captured(Effect(EffectKind.CapturePayment), AnEscrow.ChargeId),
            "capture_rejected" => new CaptureRejected(Effect(EffectKind.CapturePayment), "charge_expired_for_capture"),
            "transferred" => new Transferred(Effect(EffectKind.TransferShare), s.TransferId ?? AnEscrow.TransferId, AnEscrow.AccountId, Adopted: false),
            "transfer_rejected" => new TransferRejected(Effect(EffectKind.TransferShare), "balance_insufficient", Permanent: false),
            "recipient_not_ready" => new RecipientNotReady(Effect(EffectKind.TransferShare)),
            "recipient_payouts_enabled" => new RecipientPayoutsEnabled(),
            "payment_intent_cancelled" => new PaymentIntentCancelled(Effect(EffectKind.CancelPaymentIntent)),
            "payment_refunded" => new PaymentRefunded(Effect(EffectKind.RefundPayment), "re_test_1"),
            "refund_permit_answered" => new RefundPermitAnswered(Effect(EffectKind.RequestRefundPermit), RefundPermit.Granted),
            "effect_completed" => new EffectCompleted(Effect(EffectKind.SendEmail)),
            "unpaid_expired" => new UnpaidExpired(),
            "deadline_passed" => new DeadlinePassed(),
            "deadline_reminder_due" => new DeadlineReminderDue(EmailKind.DeadlineReminder50),
            "transfer_retry_due" => new TransferRetryDue(),
            "refund_permit_retry_due" => new RefundPermitRetryDue(),
            "operator_release" => new OperatorRelease("operator says so"),
            "operator_refund" => new OperatorRefund("operator says so"),
            "operator_retry_transfer" => new OperatorRetryTransfer(),
            "operator_approve_refund" => new OperatorApproveRefund(),
            "dispute_opened" => new DisputeOpened("dp_test_1"),
            "operator_resolve_dispute" => new OperatorResolveDispute("resolved"),
            "transfer_reversed" => new TransferReversed(s.TransferId ?? AnEscrow.TransferId, s.Split.RecipientShare.Minor),
            "payout_check_due" => new PayoutCheckDue(),
            "erase_personal_data" => new ErasePersonalData(BodiesOnly: false),
            "reply_awaited" => new ReplyAwaited(Effect(EffectKind.RequestRefundPermit), s.ReplyDeadline),
            "transfer_reported" => new TransferReported(s.TransferId ?? AnEscrow.TransferId, s.Split.RecipientShare.Minor, "eur", AnEscrow.AccountId, AnEscrow.AccountId),
            "retry_payment" => new RetryPayment("pm_card_mastercard"),
            "effect_failed" => new EffectFailed(s.Outbox.FirstOrDefault()?.Id ?? NoSuchEffect, "timeout", Permanent: false),
            "effect_failed_for_good" => new EffectFailed(
                s.Outbox.FirstOrDefault(e => e.Kind is EffectKind.CancelPaymentIntent or EffectKind.RefundPayment or EffectKind.ReverseTransfer)?.Id ?? NoSuchEffect,
                "resource_missing", Permanent: true),
            "transfer_reversal_made" => new TransferReversalMade(Effect(EffectKind.ReverseTransfer), "trr_test_1"),
            "dispute_closed" => new DisputeClosed(s.DisputeId ?? "dp_test_1", Won: true),
            "alert_raised" => new AlertRaised(AlertKind.PaymentMismatch, "Stripe reported another payment.", "pi_other"),
            "reply_refused" => new ReplyRefused(RefusedReplyReason.UnknownSender, "message-1", null),
            "email_bounced" => new EmailBounced(EmailKind.NewMessage, "alice@example.test", "HardBounce"),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
        };
        // A name may add a variant after the command's own name ("effect_failed_for_good").
        Assert.StartsWith(command.Name, name, StringComparison.Ordinal);
        return command;
    }

    /// <summary>One second after the state's last change: nothing timed is due yet, and a reply is on time if the status takes one.</summary>
    private static DateTimeOffset Soon(EscrowState s) => s.StatusChangedAt.AddSeconds(1);

    public static TheoryData<EscrowStatus, string> AllPairs()
    {
        var data = new TheoryData<EscrowStatus, string>();
        foreach (var status in Enum.GetValues<EscrowStatus>())
        {
            foreach (var name in CommandNames)
            {
                data.Add(status, name);
            }
        }
        return data;
    }

    [Fact]
    public void The_table_covers_every_command_record()
    {
        var records = typeof(EscrowCommand).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(EscrowCommand)) && !t.IsAbstract)
            .Select(t => t.Name)
            .Order(StringComparer.Ordinal)
            .ToArray();
        var s = AnEscrow.Held();
        var covered = CommandNames.Select(n => Command(n, s, Soon(s)).GetType().Name).Distinct().Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(records, covered);
    }

    [Fact]
    public void Builders_produce_every_status_and_a_valid_state()
    {
        foreach (var status in Enum.GetValues<EscrowStatus>())
        {
            var s = AnEscrow.In(status);
            Assert.Equal(status, s.Status);
            EscrowInvariants.Check(s);
        }
    }

    [Theory]
    [MemberData(nameof(AllPairs))]
    public void Every_pair_is_accepted_with_invariants_intact_or_rejected_by_name_changing_nothing(EscrowStatus status, string commandName)
    {
        var s = AnEscrow.In(status);
        var outboxBefore = s.Outbox.ToArray();
        var historyBefore = s.History.ToArray();
        var now = Soon(s);

        var decision = AnEscrow.Machine.Decide(s, Command(commandName, s, now), now);

        if (decision.Accepted)
        {
            EscrowInvariants.Check(decision.State);
            Assert.Equal(s.Id, decision.State.Id);
            Assert.Equal(s.Amount, decision.State.Amount);
            Assert.Equal(s.Split, decision.State.Split);
        }
        else
        {
            Assert.Matches(SnakeCase(), decision.Rejection!.Code);
            Assert.False(string.IsNullOrWhiteSpace(decision.Rejection.Message));
            Assert.True(ReferenceEquals(s, decision.State) || s.Equals(decision.State), "a rejection returns the input state");
            Assert.Equal(outboxBefore, decision.State.Outbox.ToArray());
            Assert.Equal(historyBefore, decision.State.History.ToArray());
            Assert.Equal(status, decision.State.Status);
        }
    }

    /// <summary>Expected: the wire status of the accepted state, or "!code" for a rejection.</summary>
    public static TheoryData<EscrowStatus, string, string> ImportantPairs() => new()
    {
        { EscrowStatus.Held, "accept_reply", "processing" },
        { EscrowStatus.Processing, "accept_reply", "!already_replied" },
        { EscrowStatus.PendingUserSetup, "accept_reply", "!already_replied" },
        { EscrowStatus.TransferFailed, "accept_reply", "!already_replied" },
        { EscrowStatus.Released, "accept_reply", "!already_replied" },
        { EscrowStatus.RefundPending, "accept_reply", "!reply_too_late" },
        { EscrowStatus.Refunded, "accept_reply", "!reply_too_late" },
        { EscrowStatus.AwaitingPayment, "accept_reply", "!not_allowed_in_status" },
        { EscrowStatus.Cancelled, "accept_reply", "!not_allowed_in_status" },
        { EscrowStatus.PaymentFailed, "accept_reply", "!not_allowed_in_status" },
        { EscrowStatus.Held, "deadline_passed", "!deadline_not_reached" },
        { EscrowStatus.Released, "deadline_passed", "!not_allowed_in_status" },
        { EscrowStatus.AwaitingPayment, "unpaid_expired", "!not_due_yet" },
        { EscrowStatus.Held, "unpaid_expired", "!not_allowed_in_status" },
        { EscrowStatus.AwaitingPayment, "payment_intent_created", "held" },
        { EscrowStatus.AwaitingPayment, "payment_failed", "awaiting_payment" },
        { EscrowStatus.PaymentFailed, "payment_failed", "!already_done" },
        { EscrowStatus.AwaitingPayment, "retry_payment", "!payment_not_declined" },
        { EscrowStatus.Held, "retry_payment", "!not_allowed_in_status" },
        { EscrowStatus.PaymentFailed, "retry_payment", "!not_allowed_in_status" },
        { EscrowStatus.PaymentFailed, "payment_intent_cancelled", "payment_failed" },
        { EscrowStatus.PaymentFailed, "authorisation_voided", "!already_done" },
        { EscrowStatus.Held, "payment_failed", "!not_allowed_in_status" },
        { EscrowStatus.Held, "payment_authorised", "!already_done" },
        { EscrowStatus.Held, "deadline_reminder_due", "!not_due_yet" },
        { EscrowStatus.Processing, "captured", "processing" },
        { EscrowStatus.Processing, "capture_rejected", "processing" },
        { EscrowStatus.Held, "effect_failed_for_good", "!unknown_effect" },
        { EscrowStatus.Released, "effect_failed_for_good", "!unknown_effect" },
        { EscrowStatus.RefundPending, "effect_failed", "refund_pending" },
        { EscrowStatus.Held, "effect_failed", "held" },
        { EscrowStatus.AwaitingPayment, "effect_failed", "awaiting_payment" },
        { EscrowStatus.Refunded, "effect_failed", "refunded" },
        { EscrowStatus.Cancelled, "effect_failed", "cancelled" },
        { EscrowStatus.Held, "captured", "!not_allowed_in_status" },
        { EscrowStatus.Released, "transferred", "!unknown_effect" },
        { EscrowStatus.Released, "transfer_reversed", "released" },
        { EscrowStatus.PendingUserSetup, "payout_check_due", "!not_due_yet" },
        { EscrowStatus.Held, "erase_personal_data", "!escrow_open" },
        { EscrowStatus.Released, "erase_personal_data", "!escrow_open" }, // its payout e-mail is still to send
        { EscrowStatus.Cancelled, "erase_personal_data", "cancelled" },
        { EscrowStatus.Held, "payout_check_due", "!not_allowed_in_status" },
        { EscrowStatus.Processing, "transfer_reported", "!not_allowed_in_status" },
        { EscrowStatus.TransferFailed, "transfer_reported", "released" },
        { EscrowStatus.Released, "transfer_reported", "!already_done" },
        { EscrowStatus.Held, "transfer_reported", "!not_allowed_in_status" },
        { EscrowStatus.Held, "transfer_reversed", "!not_allowed_in_status" },
        { EscrowStatus.TransferFailed, "transfer_retry_due", "!not_due_yet" },
        { EscrowStatus.TransferFailed, "operator_retry_transfer", "processing" },
        { EscrowStatus.Released, "operator_retry_transfer", "!not_allowed_in_status" },
        { EscrowStatus.PendingUserSetup, "recipient_payouts_enabled", "processing" },
        { EscrowStatus.Held, "recipient_payouts_enabled", "!not_allowed_in_status" },
        { EscrowStatus.RefundPending, "refund_permit_answered", "refund_pending" },
        { EscrowStatus.RefundPending, "refund_permit_retry_due", "!already_done" },
        { EscrowStatus.RefundPending, "operator_approve_refund", "!not_awaiting_approval" },
        { EscrowStatus.Held, "operator_approve_refund", "!not_allowed_in_status" },
        { EscrowStatus.Held, "operator_release", "processing" },
        { EscrowStatus.RefundPending, "operator_release", "processing" },
        { EscrowStatus.Released, "operator_release", "!not_allowed_in_status" },
        { EscrowStatus.AwaitingPayment, "operator_refund", "cancelled" },
        { EscrowStatus.Held, "operator_refund", "refund_pending" },
        { EscrowStatus.PendingUserSetup, "operator_refund", "refund_pending" },
        { EscrowStatus.TransferFailed, "operator_refund", "refund_pending" },
        { EscrowStatus.Released, "operator_refund", "refund_pending" },
        { EscrowStatus.Released, "transfer_reversal_made", "!unknown_effect" },
        { EscrowStatus.Released, "dispute_closed", "!no_dispute" },
        { EscrowStatus.Refunded, "operator_refund", "!not_allowed_in_status" },
        { EscrowStatus.Held, "authorisation_voided", "refunded" },
        { EscrowStatus.AwaitingPayment, "authorisation_voided", "cancelled" },
        { EscrowStatus.Cancelled, "authorisation_voided", "!already_done" },
        { EscrowStatus.Refunded, "authorisation_voided", "!already_done" },
        { EscrowStatus.Released, "authorisation_voided", "!not_allowed_in_status" },
        { EscrowStatus.Held, "operator_resolve_dispute", "!no_dispute" },
        { EscrowStatus.Held, "dispute_opened", "held" },
        { EscrowStatus.Held, "effect_completed", "held" },
        { EscrowStatus.Refunded, "alert_raised", "refunded" },
        { EscrowStatus.Cancelled, "reply_refused", "cancelled" },
        { EscrowStatus.Held, "email_bounced", "held" },
        { EscrowStatus.Released, "email_bounced", "!not_allowed_in_status" },
        { EscrowStatus.AwaitingPayment, "effect_completed", "!unknown_effect" },
    };

    [Theory]
    [MemberData(nameof(ImportantPairs))]
    public void Important_pairs_have_the_expected_outcome(EscrowStatus status, string commandName, string expected)
    {
        var s = AnEscrow.In(status);
        var now = Soon(s);

        var decision = AnEscrow.Machine.Decide(s, Command(commandName, s, now), now);

        var actual = decision.Accepted ? decision.State.Status.ToWire() : "!" + decision.Rejection!.Code;
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Held_reply_on_time_moves_to_processing_with_a_capture_effect()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.Deadline.AddMinutes(-1), "email", "Hi"), s.Deadline);
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
        Assert.True(d.State.Has(EffectKind.CapturePayment));
        Assert.True(d.State.HasEmail(EmailKind.ReplyForwarded));
        Assert.False(d.State.Reply!.GraceUsed);
    }

    [Fact]
    public void Refund_pending_reply_received_within_grace_before_the_cancel_started_is_accepted()
    {
        var s = AnEscrow.RefundPending();
        var d = s.Decide(new AcceptReply(s.ReplyDeadline, "email", "Sorry, just in time"), s.ReplyDeadline.AddSeconds(5));
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
        Assert.True(d.State.Has(EffectKind.CapturePayment));
        Assert.False(d.State.Has(EffectKind.RequestRefundPermit));
        Assert.True(d.State.Reply!.GraceUsed);
        EscrowInvariants.Check(d.State);
    }

    [Fact]
    public void Refund_pending_reply_within_grace_after_the_cancel_started_is_rejected_as_refund_underway()
    {
        var s = AnEscrow.RefundPending();
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));
        Assert.True(EscrowMachine.RefundStarted(s));
        var d = s.Decide(new AcceptReply(s.ReplyDeadline, "email"), s.ReplyDeadline.AddSeconds(5));
        d.AssertRefused("refund_underway", unchanged: s);
    }

    [Fact]
    public void Operator_release_after_the_cancel_started_is_rejected_as_refund_underway()
    {
        var s = AnEscrow.RefundPending();
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));
        var d = s.Decide(new OperatorRelease("too late"), s.ReplyDeadline.AddSeconds(5));
        Assert.Equal("refund_underway", d.Rejection?.Code);
    }

    [Fact]
    public void An_escrow_that_does_not_exist_rejects_every_command_as_unknown()
    {
        var s = new EscrowState();
        foreach (var name in CommandNames)
        {
            var d = AnEscrow.Machine.Decide(s, Command(name, s, AnEscrow.T0), AnEscrow.T0);
            d.AssertRefused("unknown_escrow", unchanged: s);
        }
    }

    [GeneratedRegex("^[a-z]+(_[a-z0-9]+)*$")]
    private static partial Regex SnakeCase();
}
