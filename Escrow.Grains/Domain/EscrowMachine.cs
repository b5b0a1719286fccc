using System.Collections.Immutable;

namespace Escrow.Grains.Domain;

/// <summary>The result of deciding a command: the new state (with its outbox), or a named rejection and the unchanged state.</summary>
public readonly record struct Decision(EscrowState State, Rejection? Rejection)
{
    public bool Accepted => Rejection is null;

    public static Decision Accept(EscrowState state) => new(state, null);

    public static Decision Reject(EscrowState state, Rejection rejection) => new(state, rejection);
}

/// <summary>What the grain knows when it creates an escrow (pricing resolved, admitted by the recipient's and the sender's caps).</summary>
public sealed record NewEscrow(
    Guid Id,
    string RecipientId,
    string SenderEmail,
    string Subject,
    string Message,
    Money Amount,
    int RevenueShareBps,
    TimeSpan ResponseWindow,
    TimeSpan ReplyGrace,
    TimeSpan UnpaidExpiry,
    string RequestHash,
    string ReplyTokenHash,
    string AccessTokenHash,
    string TokenKeyId,
    string? PaymentMethodId);

/// <summary>
/// The escrow lifecycle as a pure function: no Orleans runtime, no I/O, no clock. Every (status, command)
/// pair has a decided outcome; a refused one is a named <see cref="Rejection"/> that changes nothing.
/// Effects are appended to the outbox of the new state; the grain performs them after the state is written.
/// </summary>
public sealed partial class EscrowMachine(EscrowPolicy policy)
{
    public EscrowPolicy Policy { get; } = policy;

    public static EscrowState Create(NewEscrow n, DateTimeOffset now)
    {
        var deadline = now + n.ResponseWindow;
        var state = new EscrowState
        {
            Id = n.Id,
            Exists = true,
            RecipientId = n.RecipientId,
            SenderEmail = n.SenderEmail,
            Subject = n.Subject,
            Message = n.Message,
            Amount = n.Amount,
            RevenueShareBps = n.RevenueShareBps,
            Split = Split.Of(n.Amount, n.RevenueShareBps),
            ResponseWindow = n.ResponseWindow,
            CreatedAt = now,
            Deadline = deadline,
            ReplyDeadline = deadline + n.ReplyGrace,
            UnpaidExpiresAt = now + n.UnpaidExpiry,
            RequestHash = n.RequestHash,
            ReplyTokenHash = n.ReplyTokenHash,
            AccessTokenHash = n.AccessTokenHash,
            TokenKeyId = n.TokenKeyId,
            PaymentMethodId = n.PaymentMethodId,
            Status = EscrowStatus.AwaitingPayment,
            StatusChangedAt = now,
        };
        state = Record(state, now, "created", n.Amount.Minor);
        return EffectAge.Stamp(AddEffect(state, EffectKind.CreatePaymentIntent), now);
    }

    public Decision Decide(EscrowState s, EscrowCommand c, DateTimeOffset now)
    {
        if (!s.Exists)
        {
            return Decision.Reject(s, Rejection.UnknownEscrow);
        }
        // Before anything else: a forged or misdirected event is refused (and alerted on) in every status.
        if (EventClaims.NamesAnotherPaymentIntent(s, c))
        {
            return Decision.Reject(s, Rejection.PaymentIntentMismatch);
        }
        if (s.DisputeOpen && Disputes.Stops(c))
        {
            return Decision.Reject(s, Rejection.DisputeOpen);
        }
        return (s.Status, c) switch
        {
            (_, EffectCompleted e) => CompleteEffect(s, e.EffectId),

            (EscrowStatus.AwaitingPayment, PaymentIntentCreated p) => OnPaymentIntentCreated(s, p, now),
            (_, PaymentIntentCreated p) => CompleteEffect(s, p.EffectId, EffectKind.CreatePaymentIntent),

            (EscrowStatus.AwaitingPayment, PaymentAuthorised a) => AuthoriseAwaiting(s, a, now),
            (_, PaymentAuthorised a) when a.EffectId is { } confirm && HasEffect(s, confirm, EffectKind.ConfirmPayment) => CompleteEffect(s, confirm),
            (_, PaymentAuthorised a) when a.PaymentIntentId == s.PaymentIntentId && s.HeldAt is not null => Decision.Reject(s, Rejection.AlreadyDone),
            // Cancelled before the PaymentIntent's creation was answered (a lost answer): Stripe made it, and the card
            // was authorised. The hold must not stay on the sender's card: cancel that PaymentIntent.
            (EscrowStatus.Cancelled or EscrowStatus.PaymentFailed, PaymentAuthorised a) when s.PaymentIntentId is null && !string.IsNullOrEmpty(a.PaymentIntentId)
                => Decision.Accept(AddEffect(Record(s with { PaymentIntentId = a.PaymentIntentId }, now, "stray_authorisation_cancelled", a.AmountMinor, a.PaymentIntentId), EffectKind.CancelPaymentIntent)),
            (_, PaymentAuthorised) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, PaymentFailed f) => Decline(s, f, now),
            (EscrowStatus.PaymentFailed, PaymentFailed) => Decision.Reject(s, Rejection.AlreadyDone),
            (_, PaymentFailed) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, RetryPayment r) => RetryWithAnotherCard(s, r, now),
            (_, RetryPayment) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, UnpaidExpired) when now >= s.UnpaidExpiresAt => ExpireUnpaid(s, now),
            (EscrowStatus.AwaitingPayment, UnpaidExpired) => Decision.Reject(s, Rejection.NotDueYet),
            (_, UnpaidExpired) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Held, AcceptReply r) when s.ReplyTimingOf(r.ReceivedAt) != ReplyTiming.TooLate => Release(s, r.ReceivedAt, r.Source, r.ReplyText, now),
            (EscrowStatus.Held, AcceptReply) => Decision.Reject(s, Rejection.ReplyTooLate),
            (EscrowStatus.RefundPending, AcceptReply r) when s.ReplyTimingOf(r.ReceivedAt) != ReplyTiming.TooLate && !RefundStarted(s) => Release(s, r.ReceivedAt, r.Source, r.ReplyText, now),
            (EscrowStatus.RefundPending, AcceptReply r) when s.ReplyTimingOf(r.ReceivedAt) != ReplyTiming.TooLate => Decision.Reject(s, Rejection.RefundUnderway),
            (EscrowStatus.RefundPending or EscrowStatus.Refunded, AcceptReply) => Decision.Reject(s, Rejection.ReplyTooLate),
            (EscrowStatus.Processing or EscrowStatus.PendingUserSetup or EscrowStatus.TransferFailed or EscrowStatus.Released, AcceptReply)
                => Decision.Reject(s, Rejection.AlreadyReplied),
            (_, AcceptReply) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Held, DeadlineReminderDue r) => RemindRecipient(s, r.Reminder, now),
            (_, DeadlineReminderDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Held, DeadlinePassed) when now >= s.ReplyDeadline => RequestRefund(s, now),
            (EscrowStatus.Held, DeadlinePassed) => Decision.Reject(s, Rejection.DeadlineNotReached),
            (_, DeadlinePassed) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.RefundPending, RefundPermitAnswered a) => AnswerPermit(s, a, now),
            (_, RefundPermitAnswered a) => CompleteEffect(s, a.EffectId, EffectKind.RequestRefundPermit),

            (EscrowStatus.RefundPending, ReplyAwaited a) when !HasEffect(s, a.EffectId, EffectKind.RequestRefundPermit) => Decision.Reject(s, Rejection.UnknownEffect),
            (EscrowStatus.RefundPending, ReplyAwaited a) when AwaitsReply(s, a.ReceivedAt, now) => AwaitReply(s, a, now),
            (EscrowStatus.RefundPending, ReplyAwaited) => Decision.Reject(s, Rejection.ReplyTooLate),
            (_, ReplyAwaited a) => CompleteEffect(s, a.EffectId, EffectKind.RequestRefundPermit),

            (EscrowStatus.RefundPending, RefundPermitRetryDue) => RetryPermit(s, now),
            (_, RefundPermitRetryDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.RefundPending, PaymentIntentCancelled e) when HasEffect(s, e.EffectId, EffectKind.CancelPaymentIntent)
                => Refunded(RemoveEffect(s, e.EffectId), now, "payment_intent_cancelled", null),
            (EscrowStatus.RefundPending or EscrowStatus.Cancelled or EscrowStatus.PaymentFailed or EscrowStatus.Refunded, PaymentIntentCancelled e) => CompleteEffect(s, e.EffectId, EffectKind.CancelPaymentIntent),
            (_, PaymentIntentCancelled) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.RefundPending, PaymentRefunded r) when HasEffect(s, r.EffectId, EffectKind.RefundPayment)
                => Refunded(RemoveEffect(s, r.EffectId) with { RefundId = r.RefundId }, now, "payment_refunded", r.RefundId),
            (EscrowStatus.RefundPending or EscrowStatus.Refunded, PaymentRefunded r) => CompleteEffect(s, r.EffectId, EffectKind.RefundPayment),
            (_, PaymentRefunded) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, Captured cap) => OnCaptured(s, cap, now),
            (_, Captured) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, CaptureRejected r) => OnCaptureRejected(s, r, now),
            (_, CaptureRejected) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, EffectFailed f) => OnEffectFailed(s, f, now),

            (EscrowStatus.Processing, Transferred t) => OnTransferred(s, t, now),
            (EscrowStatus.Released, Transferred t) when t.TransferId == s.TransferId => CompleteEffect(s, t.EffectId, EffectKind.TransferShare),
            (_, Transferred) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, TransferRejected r) => OnTransferRejected(s, r, now),
            (_, TransferRejected) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, RecipientNotReady r) => AwaitPayoutSetup(s, r, now),
            (_, RecipientNotReady) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.PendingUserSetup, RecipientPayoutsEnabled) => StartTransfer(Transition(s, EscrowStatus.Processing, now, "payouts_enabled"), now),
            (_, RecipientPayoutsEnabled) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.PendingUserSetup, PayoutCheckDue) when s.PayoutCheckAt is { } check && now >= check => CheckPayoutSetup(s, now),
            (EscrowStatus.PendingUserSetup, PayoutCheckDue) => Decision.Reject(s, Rejection.NotDueYet),
            (_, PayoutCheckDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.TransferFailed, TransferRetryDue) when s.NextTransferAttemptAt is { } due && now >= due
                => StartTransfer(Transition(s with { NextTransferAttemptAt = null }, EscrowStatus.Processing, now, "transfer_retry"), now),
            (EscrowStatus.TransferFailed, TransferRetryDue) => Decision.Reject(s, Rejection.NotDueYet),
            (_, TransferRetryDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Held, OperatorRelease o) => Release(s, now, "operator", null, now, o.Reason),
            // Captured already, its refund refused for good: the release pays the recipient from that charge.
            (EscrowStatus.RefundPending, OperatorRelease o) when !RefundStarted(s) && s.ChargeId is not null
                => StartTransfer(Transition(s with { NeedsOperator = false }, EscrowStatus.Processing, now, "operator_release", detail: o.Reason), now),
            (EscrowStatus.RefundPending, OperatorRelease o) when !RefundStarted(s) => Release(s with { NeedsOperator = false }, now, "operator", null, now, o.Reason),
            (EscrowStatus.RefundPending, OperatorRelease) => Decision.Reject(s, Rejection.RefundUnderway),
            (_, OperatorRelease) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.TransferFailed, OperatorRetryTransfer)
                => StartTransfer(Transition(s with { NextTransferAttemptAt = null, NeedsOperator = false, TransferFailures = 0 }, EscrowStatus.Processing, now, "operator_retry_transfer"), now),
            (_, OperatorRetryTransfer) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, OperatorRefund o) => ExpireUnpaid(s, now, o.Reason),
            (EscrowStatus.Held, OperatorRefund o) => CancelAuthorisation(Transition(s, EscrowStatus.RefundPending, now, "operator_refund", detail: o.Reason)),
            (EscrowStatus.RefundPending, OperatorRefund o) when !RefundStarted(s) && s.ChargeId is not null
                => Decision.Accept(AddEffect(Record(s with { NeedsOperator = false }, now, "operator_refund", detail: o.Reason), EffectKind.RefundPayment, keyAttempt: s.MoneyKeyAttemptFloor)),
            (EscrowStatus.RefundPending, OperatorRefund o) when !RefundStarted(s) => CancelAuthorisation(Record(s with { NeedsOperator = false }, now, "operator_refund", detail: o.Reason)),
            (EscrowStatus.RefundPending, OperatorRefund) => Decision.Reject(s, Rejection.RefundUnderway),
            (EscrowStatus.PendingUserSetup or EscrowStatus.TransferFailed, OperatorRefund o) => RefundCaptured(s, o.Reason, now),
            (EscrowStatus.Processing, OperatorRefund o) when s.NeedsOperator && s.ChargeId is null => CancelAuthorisation(Transition(s with { NeedsOperator = false }, EscrowStatus.RefundPending, now, "operator_refund", detail: o.Reason)),
            (EscrowStatus.Released, OperatorRefund o) => RefundAfterRelease(s, o.Reason, now),
            (_, OperatorRefund) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.RefundPending, OperatorApproveRefund) when s.RefundAwaitingApproval
                => CancelAuthorisation(Record(s with { RefundAwaitingApproval = false, RefundApproved = true }, now, "refund_approved")),
            (EscrowStatus.RefundPending, OperatorApproveRefund) => Decision.Reject(s, Rejection.NotAwaitingApproval),
            (_, OperatorApproveRefund) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, DisputeOpened d) when s.DisputeOpen || s.DisputeId == d.DisputeId => Decision.Reject(s, Rejection.AlreadyDone),
            (_, DisputeOpened d) => OnDisputeOpened(s, d, now),

            (_, DisputeClosed d) when s.DisputeId != d.DisputeId => Decision.Reject(s, Rejection.NoDispute),
            (_, DisputeClosed) when s.DisputeStatus is not DisputeStatus.Open => Decision.Reject(s, Rejection.AlreadyDone),
            (_, DisputeClosed d) => OnDisputeClosed(s, d, now),

            (_, OperatorResolveDispute r) when s.DisputeOpen => ResolveDispute(s, r, now),
            (_, OperatorResolveDispute) => Decision.Reject(s, Rejection.NoDispute),

            // Adopting a transfer ends the escrow as paid: only one that pays the recipient what it is owed may do that.
            (EscrowStatus.Processing or EscrowStatus.TransferFailed or EscrowStatus.RefundPending, TransferReported t)
                when s.ChargeId is not null && EventClaims.TransferMismatch(s, t.AmountMinor, t.Currency, t.DestinationAccountId, t.RecipientAccountId) is not null
                => Decision.Reject(s, Rejection.TransferMismatch),
            (EscrowStatus.Processing or EscrowStatus.TransferFailed, TransferReported t) when s.ChargeId is not null && t.AmountMinor == s.Split.RecipientShare.Minor
                => AdoptReportedTransfer(s, t, now),
            (EscrowStatus.RefundPending, TransferReported t) when s.ChargeId is not null && t.AmountMinor == s.Split.RecipientShare.Minor
                && s.Outbox.Any(e => e.Kind == EffectKind.RefundPayment) => RefundOvertakenByTransfer(s, t, now),
            (EscrowStatus.Refunded, TransferReported t) when s.ChargeId is not null => Decision.Accept(Alert(Record(s, now, "transfer_after_refund", t.AmountMinor, t.TransferId),
                AlertKind.TransferAfterRefund, $"Stripe reports transfer {t.TransferId} ({t.AmountMinor}) for an escrow whose payment was refunded: the money went out twice.")),
            (EscrowStatus.Released, TransferReported t) when t.TransferId == s.TransferId => Decision.Reject(s, Rejection.AlreadyDone),
            (EscrowStatus.Released, TransferReported t) => Decision.Accept(Alert(Record(s, now, "second_transfer_reported", t.AmountMinor, t.TransferId), AlertKind.DuplicateTransfer,
                $"Stripe reports transfer {t.TransferId} ({t.AmountMinor}) for an escrow already paid by {s.TransferId}.")),
            (_, TransferReported) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, TransferReversalMade r) when HasEffect(s, r.EffectId, EffectKind.ReverseTransfer) => OnTransferReversalMade(s, r, now),
            (_, TransferReversalMade) => Decision.Reject(s, Rejection.UnknownEffect),

            // This service's own reversal (made, or under way with its answer not yet recorded): its event changes nothing.
            (_, TransferReversed t) when t.TransferId == s.ReversedTransferId
                || (t.TransferId == s.TransferId && s.Outbox.Any(e => e.Kind == EffectKind.ReverseTransfer)) => Decision.Reject(s, Rejection.AlreadyDone),
            (EscrowStatus.Released, TransferReversed t) when t.TransferId == s.TransferId
                => Decision.Accept(Alert(Record(s, now, "transfer_reversed", t.AmountMinor, t.TransferId), AlertKind.TransferReversed,
                    $"Transfer {t.TransferId} of escrow {s.Id} was reversed ({t.AmountMinor}) outside this service: the recipient no longer has the share.")),
            (_, TransferReversed) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, AuthorisationVoided v)
                => Decision.Accept(AddEffect(RemoveEffects(Transition(s, EscrowStatus.Cancelled, now, "authorisation_voided", detail: v.Reason), EffectKind.CreatePaymentIntent, EffectKind.ConfirmPayment), EffectKind.ReleaseDailySlot)),
            (EscrowStatus.RefundPending, AuthorisationVoided v) when RefundStarted(s)
                => Refunded(RemoveEffects(s, EffectKind.CancelPaymentIntent), now, "payment_intent_cancelled", v.Reason),
            (EscrowStatus.Held or EscrowStatus.RefundPending, AuthorisationVoided v) => VoidedWhileHeld(s, v, now),
            (EscrowStatus.Processing, AuthorisationVoided v) when s.ChargeId is null => VoidedWhileHeld(s, v, now),
            (EscrowStatus.Cancelled or EscrowStatus.PaymentFailed or EscrowStatus.Refunded, AuthorisationVoided) => Decision.Reject(s, Rejection.AlreadyDone),
            (_, AuthorisationVoided) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, ErasePersonalData e) => Erase(s, e, now),

            (_, AlertRaised a) => RaiseAlert(s, a),
            (_, ReplyRefused r) => RaiseAlert(s, ReplyRefusedAlert(s, r)),
            (EscrowStatus.Held, EmailBounced b) when b.Email == EmailKind.NewMessage => RaiseAlert(s, new AlertRaised(AlertKind.RecipientUnreachable,
                $"The new-message e-mail of held escrow {s.Id} to {b.To} bounced ({b.Error}); the recipient will not see the question. "
                + $"Reach the recipient another way, or refund with POST /v1/admin/escrows/{s.Id}/refund.", "new-message")),
            (_, EmailBounced) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            _ => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),
        };
    }

    /// <summary>The timed commands whose moment has come. The grain feeds them to <see cref="Decide"/> in order.</summary>
    public static IReadOnlyList<EscrowCommand> DueCommands(EscrowState s, DateTimeOffset now)
    {
        if (!s.Exists || s.DisputeOpen)
        {
            return [];
        }
        switch (s.Status)
        {
            case EscrowStatus.AwaitingPayment when now >= s.UnpaidExpiresAt:
                return [new UnpaidExpired()];
            case EscrowStatus.Held when now >= s.ReplyDeadline:
                return [new DeadlinePassed()];
            case EscrowStatus.Held when !s.Reminder75Sent && now >= s.Reminder75At:
                return [new DeadlineReminderDue(EmailKind.DeadlineReminder75)];
            case EscrowStatus.Held when !s.Reminder50Sent && now >= s.Reminder50At:
                return [new DeadlineReminderDue(EmailKind.DeadlineReminder50)];
            case EscrowStatus.TransferFailed when s.NextTransferAttemptAt is { } due && now >= due:
                return [new TransferRetryDue()];
            case EscrowStatus.RefundPending when s.NextPermitRequestAt is { } due && now >= due:
                return [new RefundPermitRetryDue()];
            case EscrowStatus.PendingUserSetup when s.PayoutCheckAt is { } due && now >= due:
                return [new PayoutCheckDue()];
            default:
                return [];
        }
    }

    /// <summary>When the grain must next look at this escrow, or null when nothing is scheduled.</summary>
    public static DateTimeOffset? NextDueAt(EscrowState s)
    {
        if (!s.Exists)
        {
            return null;
        }
        DateTimeOffset? next = null;
        void Consider(DateTimeOffset? at)
        {
            if (at is { } value && (next is null || value < next))
            {
                next = value;
            }
        }
        foreach (var effect in s.Outbox)
        {
            Consider(effect.NotBefore ?? s.StatusChangedAt);
        }
        if (!s.DisputeOpen)
        {
            switch (s.Status)
            {
                case EscrowStatus.AwaitingPayment:
                    Consider(s.UnpaidExpiresAt);
                    break;
                case EscrowStatus.Held:
                    Consider(s.ReplyDeadline);
                    Consider(s.Reminder50Sent ? null : s.Reminder50At);
                    Consider(s.Reminder75Sent ? null : s.Reminder75At);
                    break;
                case EscrowStatus.TransferFailed:
                    Consider(s.NextTransferAttemptAt);
                    break;
                case EscrowStatus.RefundPending:
                    Consider(s.NextPermitRequestAt);
                    break;
                case EscrowStatus.PendingUserSetup:
                    Consider(s.PayoutCheckAt);
                    break;
            }
        }
        return next;
    }

    /// <summary>
    /// Whether a refund waits for a reply received at <paramref name="receivedAt"/> and recorded but not judged yet: one
    /// received by the reply deadline, while the sender of the reply may still retry its delivery.
    /// </summary>
    public bool AwaitsReply(EscrowState s, DateTimeOffset receivedAt, DateTimeOffset now) =>
        s.ReplyTimingOf(receivedAt) != ReplyTiming.TooLate && now <= s.ReplyDeadline + Policy.PendingReplyWaitMax;

    /// <summary>The permit is asked for again later; the history says once why the refund waits.</summary>
    private Decision AwaitReply(EscrowState s, ReplyAwaited a, DateTimeOffset now)
    {
        var waiting = RemoveEffect(s, a.EffectId) with { NextPermitRequestAt = now + Policy.PermitRetryDelay };
        return Decision.Accept(s.History[^1].Event == "refund_waits_for_reply"
            ? waiting
            : Record(waiting, now, "refund_waits_for_reply", detail: a.ReceivedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>Whether a refund's money movement (cancel or refund) is already in the outbox or done.</summary>
    public static bool RefundStarted(EscrowState s) =>
        s.Outbox.Any(e => e.Kind.MovesMoneyBack()) || s.Status == EscrowStatus.Refunded;

    private static Decision OnPaymentIntentCreated(EscrowState s, PaymentIntentCreated p, DateTimeOffset now)
    {
        if (!HasEffect(s, p.EffectId, EffectKind.CreatePaymentIntent))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var recorded = Record(RemoveEffect(s, p.EffectId) with { PaymentIntentId = p.PaymentIntentId, ClientSecret = p.ClientSecret }, now, "payment_intent_created", p.AmountMinor, p.PaymentIntentId);
        if (p.StripeStatus != "requires_capture")
        {
            return Decision.Accept(recorded);
        }
        var authorised = Authorise(recorded, p.PaymentIntentId, p.AmountMinor, p.Currency, now);
        // A refusal changes nothing: it is reported against the state as it was before the command.
        return authorised.Accepted ? authorised : Decision.Reject(s, authorised.Rejection!);
    }

    /// <summary>Authorised by a retry's confirm or reported by a webhook: a retry still pending has nothing left to do.</summary>
    private static Decision AuthoriseAwaiting(EscrowState s, PaymentAuthorised a, DateTimeOffset now)
    {
        var authorised = Authorise(RemoveEffects(s, EffectKind.ConfirmPayment), a.PaymentIntentId, a.AmountMinor, a.Currency, now);
        return authorised.Accepted ? authorised : Decision.Reject(s, authorised.Rejection!);
    }

    private static Decision Authorise(EscrowState s, string paymentIntentId, long amountMinor, string currency, DateTimeOffset now)
    {
        if (s.PaymentIntentId is not null && s.PaymentIntentId != paymentIntentId)
        {
            return Decision.Reject(s, Rejection.PaymentIntentMismatch);
        }
        if (amountMinor != s.Amount.Minor || !string.Equals(currency, s.Amount.Currency.Code, StringComparison.OrdinalIgnoreCase))
        {
            return Decision.Reject(s, Rejection.AmountMismatch);
        }
        // Only a captured charge is recorded (ChargeId); the authorisation's charge is read again at capture.
        var held = Transition(s with { PaymentIntentId = paymentIntentId, HeldAt = now }, EscrowStatus.Held, now, "authorised", amountMinor);
        // The day's slot is taken only now that the money is held: unpaid creates cannot use up a recipient's day.
        held = AddEffect(held, EffectKind.TakeDailySlot);
        held = Email(held, EmailKind.NewMessage);
        return Decision.Accept(Email(held, EmailKind.PaymentReceipt));
    }

    /// <summary>
    /// A declined card does not end the escrow: Stripe returns the PaymentIntent to requires_payment_method, and the
    /// sender may confirm it again with another card until the unpaid expiry. Nothing is sent to the recipient and the
    /// escrow keeps counting as unpaid; it becomes payment_failed only when the expiry passes.
    /// </summary>
    private static Decision Decline(EscrowState s, PaymentFailed f, DateTimeOffset now)
    {
        if (f.EffectId is { } effect && !HasEffect(s, effect))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        if (f.PaymentIntentId is not null && s.PaymentIntentId is not null && f.PaymentIntentId != s.PaymentIntentId)
        {
            return Decision.Reject(s, Rejection.PaymentIntentMismatch);
        }
        // The webhook of a decline our own confirm already reported (and any report after the bound) changes nothing.
        if (f.EffectId is null && (s.LastPaymentError == f.Reason || s.PaymentDeclines >= EscrowState.PaymentDeclinesMax))
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        var declined = (f.EffectId is { } id ? RemoveEffect(s, id) : s) with
        {
            PaymentIntentId = s.PaymentIntentId ?? f.PaymentIntentId,
            ClientSecret = s.ClientSecret ?? f.ClientSecret,
            LastPaymentError = f.Reason,
            PaymentDeclines = s.PaymentDeclines + 1,
        };
        return Decision.Accept(Record(declined, now, "payment_declined", detail: f.Reason));
    }

    private static Decision RetryWithAnotherCard(EscrowState s, RetryPayment r, DateTimeOffset now)
    {
        if (s.LastPaymentError is null || s.PaymentIntentId is null)
        {
            return Decision.Reject(s, Rejection.PaymentNotDeclined);
        }
        // The card that was declined (the same request retried), or a retry already under way: nothing new to try.
        if (r.PaymentMethodId == s.PaymentMethodId || s.Outbox.Any(e => e.Kind == EffectKind.ConfirmPayment))
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        if (s.PaymentDeclines >= EscrowState.PaymentDeclinesMax)
        {
            return Decision.Reject(s, Rejection.TooManyPaymentAttempts);
        }
        var retrying = Record(s with { PaymentMethodId = r.PaymentMethodId }, now, "payment_retried");
        return Decision.Accept(AddEffect(retrying, EffectKind.ConfirmPayment, payload: r.PaymentMethodId));
    }

    /// <summary>
    /// The unpaid expiry: a PaymentIntent that exists is cancelled and the escrow stops counting as unpaid. After a decline the
    /// escrow ends as payment_failed; never paid for any other reason (no attempt, or an operator), as cancelled.
    /// </summary>
    private static Decision ExpireUnpaid(EscrowState s, DateTimeOffset now, string? reason = null)
    {
        var unpaid = RemoveEffects(s, EffectKind.CreatePaymentIntent, EffectKind.ConfirmPayment);
        var cancelled = reason is null && s.LastPaymentError is not null
            ? Transition(unpaid, EscrowStatus.PaymentFailed, now, "payment_failed", detail: s.LastPaymentError)
            : Transition(unpaid, EscrowStatus.Cancelled, now, reason is null ? "unpaid_expired" : "operator_cancel", detail: reason);
        if (s.PaymentIntentId is not null)
        {
            cancelled = AddEffect(cancelled, EffectKind.CancelPaymentIntent);
        }
        return Decision.Accept(AddEffect(cancelled, EffectKind.ReleaseDailySlot));
    }

    private static Decision Release(EscrowState s, DateTimeOffset receivedAt, string source, string? replyText, DateTimeOffset now, string? reason = null)
    {
        var graceUsed = s.ReplyTimingOf(receivedAt) != ReplyTiming.OnTime;
        var processing = RemoveEffects(s, EffectKind.RequestRefundPermit) with
        {
            Reply = new ReplyRecord(receivedAt, source, graceUsed),
            NextPermitRequestAt = null,
            RefundAwaitingApproval = false,
        };
        processing = Transition(processing, EscrowStatus.Processing, now, "reply_accepted", detail: reason ?? source);
        if (replyText is not null)
        {
            processing = Email(processing, EmailKind.ReplyForwarded, replyText);
        }
        return Decision.Accept(AddEffect(processing, EffectKind.CapturePayment));
    }

    private static Decision RemindRecipient(EscrowState s, EmailKind reminder, DateTimeOffset now)
    {
        var (sent, at) = reminder switch
        {
            EmailKind.DeadlineReminder50 => (s.Reminder50Sent, s.Reminder50At),
            EmailKind.DeadlineReminder75 => (s.Reminder75Sent, s.Reminder75At),
            _ => throw new ArgumentOutOfRangeException(nameof(reminder), reminder, "Only the 50 % and 75 % reminders are timed."),
        };
        if (sent)
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        if (now < at)
        {
            return Decision.Reject(s, Rejection.NotDueYet);
        }
        // A 75 % reminder that is due makes the 50 % one pointless: each is sent at most once, and never out of order.
        var marked = reminder == EmailKind.DeadlineReminder75
            ? s with { Reminder50Sent = true, Reminder75Sent = true }
            : s with { Reminder50Sent = true };
        if (now >= s.Deadline)
        {
            // Woken only after the deadline (an outage): a reminder would quote a deadline already past. Only the
            // grace period is left, and the refund or the reply comes next.
            return Decision.Accept(Record(s with { Reminder50Sent = true, Reminder75Sent = true }, now, "reminders_skipped_past_deadline"));
        }
        return Decision.Accept(Email(Record(marked, now, reminder == EmailKind.DeadlineReminder75 ? "reminder_75" : "reminder_50"), reminder));
    }

    private static Decision RequestRefund(EscrowState s, DateTimeOffset now) =>
        Decision.Accept(AddEffect(Transition(s, EscrowStatus.RefundPending, now, "deadline_passed"), EffectKind.RequestRefundPermit));

    private Decision AnswerPermit(EscrowState s, RefundPermitAnswered a, DateTimeOffset now)
    {
        if (!HasEffect(s, a.EffectId, EffectKind.RequestRefundPermit))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var answered = RemoveEffect(s, a.EffectId);
        return a.Outcome switch
        {
            RefundPermit.Granted => CancelAuthorisation(Record(answered, now, "refund_permit_granted")),
            RefundPermit.Denied => Decision.Accept(Record(answered with { NextPermitRequestAt = now + Policy.PermitRetryDelay }, now, "refund_permit_denied")),
            RefundPermit.NeedsApproval => Decision.Accept(Alert(Record(answered with { RefundAwaitingApproval = true }, now, "refund_needs_approval"), AlertKind.RefundNeedsApproval,
                $"A refund of {s.Amount.Minor} {s.Amount.Currency} exceeds the circuit breaker's whole window cap; approve it with POST /v1/admin/escrows/{s.Id}/approve-refund.")),
            _ => throw new ArgumentOutOfRangeException(nameof(a), a.Outcome, null),
        };
    }

    private static Decision RetryPermit(EscrowState s, DateTimeOffset now)
    {
        if (s.NextPermitRequestAt is not { } due || s.RefundAwaitingApproval || RefundStarted(s) || s.Outbox.Any(e => e.Kind == EffectKind.RequestRefundPermit))
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        if (now < due)
        {
            return Decision.Reject(s, Rejection.NotDueYet);
        }
        return Decision.Accept(AddEffect(s with { NextPermitRequestAt = null }, EffectKind.RequestRefundPermit));
    }

    private static Decision CancelAuthorisation(EscrowState s) =>
        Decision.Accept(AddEffect(RemoveEffects(s with { NextPermitRequestAt = null, RefundAwaitingApproval = false }, EffectKind.RequestRefundPermit), EffectKind.CancelPaymentIntent,
            keyAttempt: s.MoneyKeyAttemptFloor));

    private static Decision RefundCaptured(EscrowState s, string reason, DateTimeOffset now)
    {
        var pending = Transition(RemoveEffects(s with { NextTransferAttemptAt = null }, EffectKind.TransferShare, EffectKind.AwaitPayoutSetup), EscrowStatus.RefundPending, now, "operator_refund", detail: reason);
        return Decision.Accept(AddEffect(pending, EffectKind.RefundPayment, keyAttempt: s.MoneyKeyAttemptFloor));
    }

    private static Decision Refunded(EscrowState s, DateTimeOffset now, string evt, string? detail)
    {
        var refunded = Transition(s with { NextPermitRequestAt = null, RefundAwaitingApproval = false }, EscrowStatus.Refunded, now, evt, s.Amount.Minor, detail);
        return Decision.Accept(RefundEmails(refunded, CauseOf(s)));
    }

    /// <summary>The sender's refund e-mail and the recipient's missed-opportunity e-mail, both written for the cause.</summary>
    private static EscrowState RefundEmails(EscrowState s, RefundCause cause) =>
        AddEffect(AddEffect(s, EffectKind.SendEmail, EmailKind.RefundIssued, detail: cause.ToString()), EffectKind.SendEmail, EmailKind.MissedOpportunity, detail: cause.ToString());

    /// <summary>Why a refund that is being completed was made, read from what the escrow went through.</summary>
    public static RefundCause CauseOf(EscrowState s)
    {
        var byOperator = s.History.Any(h => h.Event == "operator_refund");
        if (s.ShareReversed)
        {
            return RefundCause.PlatformAfterRelease;
        }
        if (s.Reply is not null)
        {
            return RefundCause.PlatformAfterReply;
        }
        return byOperator && !s.History.Any(h => h.Event == "deadline_passed") ? RefundCause.PlatformBeforeReply : RefundCause.NoReply;
    }

    /// <summary>
    /// A refund of a paid-out escrow: the recipient's share is taken back first (a transfer reversal), and only once
    /// that is recorded is the charge refunded, so the platform never pays the share twice. A share already taken back
    /// (a dispute's reversal) is not reversed again.
    /// </summary>
    private static Decision RefundAfterRelease(EscrowState s, string reason, DateTimeOffset now)
    {
        var pending = Transition(s with { NeedsOperator = false }, EscrowStatus.RefundPending, now, "operator_refund", detail: reason);
        return Decision.Accept(AddEffect(pending, s.ShareReversed ? EffectKind.RefundPayment : EffectKind.ReverseTransfer, keyAttempt: s.MoneyKeyAttemptFloor));
    }

    /// <summary>
    /// A dispute stops automatic actions. Opened after the recipient was paid, with Disputes:ReverseTransfer, it takes
    /// their share back: the recipient, not the platform, carries the chargeback until the dispute is decided.
    /// </summary>
    private Decision OnDisputeOpened(EscrowState s, DisputeOpened d, DateTimeOffset now)
    {
        var opened = Record(s with { DisputeOpen = true, DisputeId = d.DisputeId, DisputeStatus = DisputeStatus.Open }, now, "dispute_opened", detail: d.DisputeId);
        var reverse = s.Status == EscrowStatus.Released && Policy.ReverseTransferOnDispute && !s.ShareReversed && !s.Outbox.Any(e => e.Kind == EffectKind.ReverseTransfer);
        opened = Alert(opened, AlertKind.DisputeOpened, reverse
            ? $"Dispute {d.DisputeId} was opened on the charge of escrow {s.Id} after the recipient was paid: their share is taken back (Disputes:ReverseTransfer) and transferred again if the dispute is won. Automatic actions are stopped until it closes."
            : $"Dispute {d.DisputeId} was opened on the charge of escrow {s.Id}: automatic actions are stopped until it closes or an operator resolves it.");
        return Decision.Accept(reverse ? AddEffect(opened, EffectKind.ReverseTransfer, keyAttempt: s.MoneyKeyAttemptFloor) : opened);
    }

    /// <summary>
    /// Won: the money stays with the platform, so a share taken back for the dispute is transferred again, under the
    /// next transfer key (unless an operator refunded the sender meanwhile). Lost: the sender's bank returned the money;
    /// it is recorded, nothing is transferred, and both parties are told.
    /// </summary>
    private static Decision OnDisputeClosed(EscrowState s, DisputeClosed d, DateTimeOffset now)
    {
        var closed = s with { DisputeOpen = false, DisputeStatus = d.Won ? DisputeStatus.Won : DisputeStatus.Lost };
        if (!d.Won)
        {
            closed = Record(closed, now, "dispute_lost", detail: d.DisputeId);
            closed = Alert(closed, AlertKind.DisputeLost, $"Dispute {d.DisputeId} of escrow {s.Id} was lost: the sender's bank returned {s.Amount.Minor} {s.Amount.Currency} to the sender. "
                + (s.ShareReversed || s.Outbox.Any(e => e.Kind == EffectKind.ReverseTransfer) ? "The recipient's share was taken back." : "The platform carries the loss."));
            return Decision.Accept(s.Status == EscrowStatus.Released ? RefundEmails(closed, RefundCause.Dispute) : closed);
        }
        if (s.Status == EscrowStatus.Released && s.ShareReversed)
        {
            var again = Transition(closed with { TransferKeyAttempt = s.TransferKeyAttempt + 1, NeedsOperator = false }, EscrowStatus.Processing, now, "dispute_won", detail: d.DisputeId);
            again = Alert(again, AlertKind.DisputeWon, $"Dispute {d.DisputeId} of escrow {s.Id} was won: the recipient's share is transferred again.");
            return StartTransfer(again, now);
        }
        // Not taken back yet: the reversal is no longer needed. Refunded by an operator meanwhile: nothing to pay.
        var kept = s.Status == EscrowStatus.Released ? RemoveEffects(closed, EffectKind.ReverseTransfer) : closed;
        kept = Record(kept, now, "dispute_won", detail: d.DisputeId);
        return Decision.Accept(Alert(kept, AlertKind.DisputeWon, s.Status == EscrowStatus.Released
            ? $"Dispute {d.DisputeId} of escrow {s.Id} was won: the recipient keeps the share."
            : $"Dispute {d.DisputeId} of escrow {s.Id} was won; the escrow is {s.Status.ToWire()}, so nothing is transferred."));
    }

    /// <summary>
    /// An operator says the dispute no longer takes the money (withdrawn, or settled outside Stripe's decision): it
    /// ends as resolved, automatic actions resume, and a share taken back for it is transferred again, as after a won
    /// dispute (it used to stay taken back, with the dispute shown open).
    /// </summary>
    private static Decision ResolveDispute(EscrowState s, OperatorResolveDispute r, DateTimeOffset now)
    {
        var resolved = s with { DisputeOpen = false, DisputeStatus = DisputeStatus.Resolved };
        if (s.Status == EscrowStatus.Released && s.ShareReversed)
        {
            var again = Transition(resolved with { TransferKeyAttempt = s.TransferKeyAttempt + 1, NeedsOperator = false }, EscrowStatus.Processing, now, "dispute_resolved", detail: r.Reason);
            return StartTransfer(again, now);
        }
        // Not taken back yet: the reversal is no longer needed (a refund's own reversal, in refund_pending, stays).
        var kept = s.Status == EscrowStatus.Released ? RemoveEffects(resolved, EffectKind.ReverseTransfer) : resolved;
        return Decision.Accept(Record(kept, now, "dispute_resolved", detail: r.Reason));
    }

    private static Decision OnTransferReversalMade(EscrowState s, TransferReversalMade r, DateTimeOffset now)
    {
        var reversed = RemoveEffect(s, r.EffectId) with { ReversedTransferId = s.TransferId, TransferReversalId = r.ReversalId };
        reversed = Record(reversed, now, "share_reversed", s.Split.RecipientShare.Minor, $"{r.ReversalId} of {s.TransferId}");
        return Decision.Accept(s.Status == EscrowStatus.RefundPending
            ? AddEffect(reversed, EffectKind.RefundPayment, keyAttempt: s.MoneyKeyAttemptFloor)
            : reversed);
    }

    private static Decision VoidedWhileHeld(EscrowState s, AuthorisationVoided v, DateTimeOffset now)
    {
        var voided = RemoveEffects(s, EffectKind.CapturePayment, EffectKind.RequestRefundPermit, EffectKind.CancelPaymentIntent) with { NextPermitRequestAt = null };
        voided = Transition(voided, EscrowStatus.Refunded, now, "authorisation_voided", s.Amount.Minor, v.Reason);
        // Both parties are told. After the deadline with no reply (a refund waiting for its permit) the refund's own
        // e-mails say what happened; before it, or after a reply whose capture had not run, the message is withdrawn.
        voided = s.Status == EscrowStatus.RefundPending
            ? RefundEmails(voided, RefundCause.AuthorisationExpired)
            : Email(Email(voided, EmailKind.PaymentVoided), EmailKind.PaymentWithdrawn);
        return Decision.Accept(Alert(voided, AlertKind.AuthorisationVoided, v.Reason));
    }

    private static Decision OnCaptured(EscrowState s, Captured c, DateTimeOffset now)
    {
        if (!HasEffect(s, c.EffectId, EffectKind.CapturePayment))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var captured = Record(RemoveEffect(s, c.EffectId) with { ChargeId = c.ChargeId }, now, "captured", s.Amount.Minor, c.ChargeId);
        return StartTransfer(captured, now);
    }

    private static Decision OnCaptureRejected(EscrowState s, CaptureRejected r, DateTimeOffset now)
    {
        if (!HasEffect(s, r.EffectId, EffectKind.CapturePayment))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var stuck = Record(RemoveEffect(s, r.EffectId) with { NeedsOperator = true, LastError = r.Code }, now, "capture_rejected", detail: r.Code);
        return Decision.Accept(Alert(stuck, AlertKind.MoneyEffectRejected,
            $"Stripe refused the capture of escrow {s.Id} for good ({r.Code}); refund it with POST /v1/admin/escrows/{s.Id}/refund."));
    }

    /// <summary>
    /// Stripe would not take the share back (typically the connected account's balance does not cover it): the refund
    /// that was to follow is not made, so the platform does not pay twice. A refund after release goes back to released.
    /// </summary>
    private static Decision ReversalRejected(EscrowState s, PendingEffect effect, string code, DateTimeOffset now)
    {
        var stopped = RemoveEffect(s, effect.Id) with
        {
            NeedsOperator = true,
            LastError = code,
            MoneyKeyAttemptFloor = Math.Max(s.MoneyKeyAttemptFloor, effect.KeyAttempt + 1),
        };
        stopped = s.Status == EscrowStatus.RefundPending
            ? Transition(stopped, EscrowStatus.Released, now, "reversal_rejected", detail: code)
            : Record(stopped, now, "reversal_rejected", detail: code);
        var why = code == "balance_insufficient" ? "the recipient's connected account has too small a balance to cover it" : "Stripe's code says why";
        var refund = s.Status == EscrowStatus.RefundPending
            ? $" The refund was not made: the sender is not refunded. Try again with POST /v1/admin/escrows/{s.Id}/refund once the balance covers it, or refund the sender from the platform's own balance in Stripe."
            : "";
        return Decision.Accept(Alert(stopped, AlertKind.MoneyEffectRejected,
            $"Stripe refused the reversal of transfer {s.TransferId} of escrow {s.Id} for good ({code}: {why}).{refund}"));
    }

    /// <summary>
    /// An effect failed. Refused for good, a money movement back to the sender (a cancel, a refund, a transfer reversal)
    /// ends for an operator (<see cref="MoneyMovementRefused"/>) and an e-mail is dropped with an alert (the address is
    /// refused: it never blocks money); every other failure is tried again with backoff (<see cref="RetryLater"/>): the
    /// machine never drops work it has no rule to end.
    /// </summary>
    private Decision OnEffectFailed(EscrowState s, EffectFailed f, DateTimeOffset now)
    {
        var effect = s.Outbox.FirstOrDefault(e => e.Id == f.EffectId);
        if (effect is null)
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        return (f.Permanent, effect.Kind) switch
        {
            (true, var kind) when kind.MovesMoneyBack() => MoneyMovementRefused(s, effect, f.Error, now),
            (true, EffectKind.SendEmail) => Decision.Accept(Alert(RemoveEffect(s, effect.Id), AlertKind.EmailRejected,
                $"Postmark refused the {effect.Email} e-mail of escrow {s.Id} for good ({f.Error}); it is not sent again.")),
            _ => RetryLater(s, effect, f.Error, now),
        };
    }

    /// <summary>
    /// Schedules another try with bounded backoff. An e-mail that keeps failing is dropped with an alert (it never
    /// blocks money); any other effect keeps trying at the longest delay and raises one alert.
    /// </summary>
    private Decision RetryLater(EscrowState s, PendingEffect e, string error, DateTimeOffset now)
    {
        var attempts = e.Attempts + 1;
        var retry = Policy.EffectRetry;
        // A failed call's key is not used again (Stripe may have saved the failure under it): the next try reads first.
        var keyAttempt = e.Kind.HasOwnKeyAttempts() ? e.KeyAttempt + 1 : e.KeyAttempt;
        var next = s with
        {
            Outbox = s.Outbox.Replace(e, e with { Attempts = attempts, NotBefore = now + retry.DelayAfter(attempts), KeyAttempt = keyAttempt }),
            LastError = error,
        };
        if (attempts != retry.MaxAttempts)
        {
            return Decision.Accept(next);
        }
        var detail = $"{e.Kind} {e.Email} failed {attempts} times: {error}";
        return Decision.Accept(e.Kind == EffectKind.SendEmail
            ? Alert(RemoveEffect(next, e.Id), AlertKind.EmailFailed, detail)
            : Alert(next, AlertKind.EffectRetrying, detail));
    }

    /// <summary>
    /// Stripe refused a cancel or a refund for good: asking again would get the same answer (and its key replays it), so
    /// the effect ends here. The history keeps Stripe's code, an operator is alerted and must act; an operator's refund
    /// or release starts the money movement again under a key Stripe has not seen.
    /// </summary>
    private static Decision MoneyMovementRefused(EscrowState s, PendingEffect effect, string code, DateTimeOffset now)
    {
        if (effect.Kind == EffectKind.ReverseTransfer)
        {
            return ReversalRejected(s, effect, code, now);
        }
        var operation = effect.Kind == EffectKind.CancelPaymentIntent ? "cancel" : "refund";
        var stopped = RemoveEffect(s, effect.Id) with
        {
            // A finished escrow (a stray authorisation's cancel) has no action left to clear the flag: the alert is the task.
            NeedsOperator = s.NeedsOperator || !s.IsTerminal,
            LastError = code,
            MoneyKeyAttemptFloor = Math.Max(s.MoneyKeyAttemptFloor, effect.KeyAttempt + 1),
        };
        stopped = Record(stopped, now, $"{operation}_rejected", detail: code);
        var next = s.Status == EscrowStatus.RefundPending
            ? $"retry it with POST /v1/admin/escrows/{s.Id}/refund, or pay the recipient with POST /v1/admin/escrows/{s.Id}/release"
            : $"it is not retried; settle the payment {s.PaymentIntentId} in Stripe's dashboard";
        return Decision.Accept(Alert(stopped, AlertKind.MoneyEffectRejected, $"Stripe refused the {operation} of escrow {s.Id} for good ({code}): {next}."));
    }

    private static Decision StartTransfer(EscrowState s, DateTimeOffset now)
    {
        if (s.Outbox.Any(e => e.Kind == EffectKind.TransferShare))
        {
            return Decision.Accept(s);
        }
        var started = (s.FirstTransferAttemptAt is null ? s with { FirstTransferAttemptAt = now } : s) with { PayoutCheckAt = null };
        return Decision.Accept(AddEffect(RemoveEffects(started, EffectKind.AwaitPayoutSetup), EffectKind.TransferShare));
    }

    private static Decision OnTransferred(EscrowState s, Transferred t, DateTimeOffset now)
    {
        if (!HasEffect(s, t.EffectId, EffectKind.TransferShare))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var released = RemoveEffect(s, t.EffectId) with { TransferId = t.TransferId, RecipientAccountId = t.DestinationAccountId, NeedsOperator = false };
        released = Transition(released, EscrowStatus.Released, now, t.Adopted ? "transfer_adopted" : "transferred", s.Split.RecipientShare.Minor, t.TransferId);
        // The share transferred again after a dispute was won: the recipient was told of the payout the first time.
        return Decision.Accept(s.ReversedTransferId is null ? Email(released, EmailKind.PayoutSent) : released);
    }

    /// <summary>A transfer whose answer we lost, reported by Stripe's webhook: adopt it rather than pay again.</summary>
    private static Decision AdoptReportedTransfer(EscrowState s, TransferReported t, DateTimeOffset now)
    {
        var released = RemoveEffects(s, EffectKind.TransferShare) with
        {
            TransferId = t.TransferId,
            RecipientAccountId = t.DestinationAccountId,
            NextTransferAttemptAt = null,
            NeedsOperator = false,
        };
        released = Transition(released, EscrowStatus.Released, now, "transfer_adopted", t.AmountMinor, t.TransferId);
        return Decision.Accept(s.ReversedTransferId is null ? Email(released, EmailKind.PayoutSent) : released);
    }

    /// <summary>
    /// A refund of a captured payment found that a transfer was made after all (its answer had been lost): the
    /// recipient has the money, so the refund is not made; the escrow is released and an operator is told.
    /// </summary>
    private static Decision RefundOvertakenByTransfer(EscrowState s, TransferReported t, DateTimeOffset now)
    {
        var adopted = AdoptReportedTransfer(RemoveEffects(s, EffectKind.RefundPayment), t, now).State;
        return Decision.Accept(Alert(adopted, AlertKind.RefundNotMade,
            $"The refund was not made: Stripe already has transfer {t.TransferId} ({t.AmountMinor}) to the recipient, so the escrow is released. Reverse the transfer by hand if the sender must still be refunded."));
    }

    private Decision OnTransferRejected(EscrowState s, TransferRejected r, DateTimeOffset now)
    {
        if (!HasEffect(s, r.EffectId, EffectKind.TransferShare))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var failures = s.TransferFailures + 1;
        var failed = RemoveEffect(s, r.EffectId) with
        {
            TransferFailures = failures,
            LastError = r.Code,
            // Stripe replays a saved failure to every retry with the same key, so each try has its own; the next try
            // looks the transfer group up first, so a transfer made behind a lost answer is adopted, not made twice.
            TransferKeyAttempt = s.TransferKeyAttempt + 1,
        };
        if (Policy.TransferRetry.IsExhausted(failures))
        {
            failed = Transition(failed with { NextTransferAttemptAt = null, NeedsOperator = true }, EscrowStatus.TransferFailed, now, "transfer_failed", detail: r.Code);
            return Decision.Accept(Alert(failed, AlertKind.TransferRetriesExhausted,
                $"The transfer failed {failures} times (last: {r.Code}); retry with POST /v1/admin/escrows/{s.Id}/retry-transfer."));
        }
        var next = now + Policy.TransferRetry.DelayAfter(failures);
        return Decision.Accept(Transition(failed with { NextTransferAttemptAt = next }, EscrowStatus.TransferFailed, now, "transfer_failed", detail: r.Code));
    }

    private Decision AwaitPayoutSetup(EscrowState s, RecipientNotReady r, DateTimeOffset now)
    {
        if (!HasEffect(s, r.EffectId, EffectKind.TransferShare))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var waiting = Transition(RemoveEffect(s, r.EffectId) with { PayoutCheckAt = now + Policy.PayoutCheckPeriod }, EscrowStatus.PendingUserSetup, now, "awaiting_payout_setup");
        return Decision.Accept(Email(AddEffect(waiting, EffectKind.AwaitPayoutSetup), EmailKind.PendingPayoutSetup));
    }

    /// <summary>
    /// The escrow's own periodic check while it waits: ask the recipient again (which also puts it back on the
    /// recipient's waiting list). No history entry: nothing happened yet.
    /// </summary>
    private Decision CheckPayoutSetup(EscrowState s, DateTimeOffset now)
    {
        var next = s with { PayoutCheckAt = now + Policy.PayoutCheckPeriod };
        return Decision.Accept(next.Outbox.Any(e => e.Kind == EffectKind.AwaitPayoutSetup) ? next : AddEffect(next, EffectKind.AwaitPayoutSetup));
    }

    private static Decision CompleteEffect(EscrowState s, int effectId, EffectKind? kind = null) =>
        HasEffect(s, effectId, kind) ? Decision.Accept(RemoveEffect(s, effectId)) : Decision.Reject(s, Rejection.UnknownEffect);

    // Building blocks. Each returns a new state; none performs anything.

    /// <summary>A result completes only the pending effect it names, and only an effect of the kind that produces it.</summary>
    private static bool HasEffect(EscrowState s, int effectId, EffectKind? kind = null) =>
        s.Outbox.Any(e => e.Id == effectId && (kind is null || e.Kind == kind));

    internal static EscrowState AddEffect(
        EscrowState s, EffectKind kind, EmailKind? email = null, string? detail = null, string? payload = null, int keyAttempt = 0,
        AlertKind? alert = null, string? alertKey = null)
    {
        if (s.Outbox.Length >= EscrowState.OutboxEffectsMax)
        {
            throw new EscrowInvariantException(s.Id, $"the outbox is full ({EscrowState.OutboxEffectsMax} effects)");
        }
        var effect = new PendingEffect(s.NextEffectId, kind, email, detail, Payload: payload, KeyAttempt: keyAttempt, Alert: alert, AlertKey: alertKey);
        return s with { Outbox = s.Outbox.Add(effect), NextEffectId = s.NextEffectId + 1 };
    }

    private static EscrowState Email(EscrowState s, EmailKind kind, string? payload = null) => AddEffect(s, EffectKind.SendEmail, kind, payload: payload);

    private static EscrowState Alert(EscrowState s, AlertKind kind, string detail) => AddEffect(s, EffectKind.RaiseAlert, detail: detail, alert: kind);

    private static EscrowState RemoveEffect(EscrowState s, int effectId) =>
        s with { Outbox = s.Outbox.RemoveAll(e => e.Id == effectId) };

    private static EscrowState RemoveEffects(EscrowState s, params EffectKind[] kinds) =>
        s with { Outbox = s.Outbox.RemoveAll(e => kinds.Contains(e.Kind)) };

    /// <remarks>An escrow stored with clear tokens (before they were hashed) keeps only their hashes once it ends.</remarks>
    private static EscrowState Transition(EscrowState s, EscrowStatus status, DateTimeOffset now, string evt, long? amountMinor = null, string? detail = null) =>
        Record((status.IsTerminal() ? s.WithoutClearTokens() : s) with { Status = status, StatusChangedAt = now }, now, evt, amountMinor, detail);

    private static EscrowState Record(EscrowState s, DateTimeOffset now, string evt, long? amountMinor = null, string? detail = null)
    {
        if (s.History.Length >= EscrowState.HistoryEntriesMax)
        {
            throw new EscrowInvariantException(s.Id, $"the history is full ({EscrowState.HistoryEntriesMax} entries)");
        }
        var entry = new HistoryEntry(s.History.Length + 1, s.Status, now, evt, amountMinor, detail);
        return s with { History = s.History.Add(entry) };
    }
}
