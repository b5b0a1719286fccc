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
            (_, PaymentAuthorised a) when a.EffectId is { } confirm && HasEffect(s, confirm, EffectKind.ConfirmPayment) =>
                CompleteEffect(s, confirm),
            (_, PaymentAuthorised a) when a.PaymentIntentId == s.PaymentIntentId && s.HeldAt is not null =>
                Decision.Reject(s, Rejection.AlreadyDone),
            // Cancelled before the PaymentIntent's creation was answered (a lost answer): Stripe made it, and the card
            // was authorised. The hold must not stay on the sender's card: cancel that PaymentIntent.
            (EscrowStatus.Cancelled or EscrowStatus.PaymentFailed, PaymentAuthorised a) when s.PaymentIntentId is null
                && !string.IsNullOrEmpty(a.PaymentIntentId)
                => Decision.Accept(AddEffect(Record(s with { PaymentIntentId = a.PaymentIntentId }, now, "stray_authorisation_cancelled",
                    a.AmountMinor, a.PaymentIntentId), EffectKind.CancelPaymentIntent)),
            (_, PaymentAuthorised) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, PaymentFailed f) => Decline(s, f, now),
            (EscrowStatus.PaymentFailed, PaymentFailed) => Decision.Reject(s, Rejection.AlreadyDone),
            (_, PaymentFailed) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, RetryPayment r) => RetryWithAnotherCard(s, r, now),
            (_, RetryPayment) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, UnpaidExpired) when now >= s.UnpaidExpiresAt => ExpireUnpaid(s, now),
            (EscrowStatus.AwaitingPayment, UnpaidExpired) => Decision.Reject(s, Rejection.NotDueYet),
            (_, UnpaidExpired) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            // One reply releases once: after an operator refund of a paid escrow only an operator release pays again.
            (_, AcceptReply) when s.Reply is not null => Decision.Reject(s, Rejection.AlreadyReplied),
            (EscrowStatus.Held, AcceptReply r) when s.ReplyTimingOf(r.ReceivedAt) != ReplyTiming.TooLate =>
                Release(s, r.ReceivedAt, r.Source, r.ReplyText, now),
            (EscrowStatus.Held, AcceptReply) => Decision.Reject(s, Rejection.ReplyTooLate),
            (EscrowStatus.RefundPending, AcceptReply r) when s.ReplyTimingOf(r.ReceivedAt) != ReplyTiming.TooLate && !RefundStarted(s) =>
                Release(s, r.ReceivedAt, r.Source, r.ReplyText, now),
            (EscrowStatus.RefundPending, AcceptReply r) when s.ReplyTimingOf(r.ReceivedAt) != ReplyTiming.TooLate =>
                Decision.Reject(s, Rejection.RefundUnderway),
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

            (EscrowStatus.RefundPending, ReplyAwaited a) when !HasEffect(s, a.EffectId, EffectKind.RequestRefundPermit) =>
                Decision.Reject(s, Rejection.UnknownEffect),
            (EscrowStatus.RefundPending, ReplyAwaited a) when AwaitsReply(s, a.ReceivedAt, now) => AwaitReply(s, a, now),
            (EscrowStatus.RefundPending, ReplyAwaited) => Decision.Reject(s, Rejection.ReplyTooLate),
            (_, ReplyAwaited a) => CompleteEffect(s, a.EffectId, EffectKind.RequestRefundPermit),

            (EscrowStatus.RefundPending, RefundPermitRetryDue) => RetryPermit(s, now),
            (_, RefundPermitRetryDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.RefundPending, PaymentIntentCancelled e) when HasEffect(s, e.EffectId, EffectKind.CancelPaymentIntent)
                => Refunded(RemoveEffect(s, e.EffectId), now, "payment_intent_cancelled", null),
            (EscrowStatus.RefundPending or EscrowStatus.Cancelled or EscrowStatus.PaymentFailed or EscrowStatus.Refunded,
                PaymentIntentCancelled e) => CompleteEffect(s, e.EffectId, EffectKind.CancelPaymentIntent),
            (_, PaymentIntentCancelled) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.RefundPending, PaymentRefunded r) when HasEffect(s, r.EffectId, EffectKind.RefundPayment)
                => Refunded(RemoveEffect(s, r.EffectId) with { RefundId = r.RefundId }, now, "payment_refunded", r.RefundId),
            (EscrowStatus.RefundPending or EscrowStatus.Refunded, PaymentRefunded r) =>
                CompleteEffect(s, r.EffectId, EffectKind.RefundPayment),
            (_, PaymentRefunded) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, Captured cap) => OnCaptured(s, cap, now),
            (_, Captured) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, CaptureRejected r) => OnCaptureRejected(s, r, now),
            (_, CaptureRejected) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, EffectFailed f) => OnEffectFailed(s, f, now),

            (EscrowStatus.Processing, Transferred t) => OnTransferred(s, t, now),
            (EscrowStatus.Released, Transferred t) when t.TransferId == s.TransferId =>
                CompleteEffect(s, t.EffectId, EffectKind.TransferShare),
            (_, Transferred) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, TransferRejected r) => OnTransferRejected(s, r, now),
            (_, TransferRejected) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Processing, RecipientNotReady r) => AwaitPayoutSetup(s, r, now),
            (_, RecipientNotReady) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.PendingUserSetup, RecipientPayoutsEnabled) =>
                StartTransfer(Transition(s, EscrowStatus.Processing, now, "payouts_enabled"), now),
            (_, RecipientPayoutsEnabled) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.PendingUserSetup, PayoutCheckDue) when s.PayoutCheckAt is { } check && now >= check => CheckPayoutSetup(s, now),
            (EscrowStatus.PendingUserSetup, PayoutCheckDue) => Decision.Reject(s, Rejection.NotDueYet),
            (_, PayoutCheckDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.TransferFailed, TransferRetryDue) when s.NextTransferAttemptAt is { } due && now >= due
                => StartTransfer(Transition(s with { NextTransferAttemptAt = null }, EscrowStatus.Processing, now, "transfer_retry"), now),
            (EscrowStatus.TransferFailed, TransferRetryDue) => Decision.Reject(s, Rejection.NotDueYet),
            (_, TransferRetryDue) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.Held, OperatorRelease o) => Release(s, now, "operator", null, now, o.Reason),
            // Captured already, its refund refused for good: the release pays the recipient from that charge. A share
            // taken back first is paid under the next transfer key: the old key would replay the reversed transfer.
            (EscrowStatus.RefundPending, OperatorRelease o) when !RefundStarted(s) && s.ChargeId is not null
                => StartTransfer(Transition(s with
                {
                    NeedsOperator = false,
                    TransferKeyAttempt = s.ShareReversed ? s.TransferKeyAttempt + 1 : s.TransferKeyAttempt,
                }, EscrowStatus.Processing, now, "operator_release", detail: o.Reason), now),
            (EscrowStatus.RefundPending, OperatorRelease o) when !RefundStarted(s) =>
                Release(s with { NeedsOperator = false }, now, "operator", null, now, o.Reason),
            (EscrowStatus.RefundPending, OperatorRelease) => Decision.Reject(s, Rejection.RefundUnderway),
            (_, OperatorRelease) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.TransferFailed, OperatorRetryTransfer)
                => StartTransfer(Transition(s with { NextTransferAttemptAt = null, NeedsOperator = false, TransferFailures = 0 },
                    EscrowStatus.Processing, now, "operator_retry_transfer"), now),
            (_, OperatorRetryTransfer) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, OperatorRefund o) => ExpireUnpaid(s, now, o.Reason),
            (EscrowStatus.Held, OperatorRefund o) =>
                CancelAuthorisation(Transition(s, EscrowStatus.RefundPending, now, "operator_refund", detail: o.Reason)),
            (EscrowStatus.RefundPending, OperatorRefund o) when !RefundStarted(s) && s.ChargeId is not null
                => Decision.Accept(AddEffect(Record(s with { NeedsOperator = false }, now, "operator_refund", detail: o.Reason),
                    EffectKind.RefundPayment, keyAttempt: s.MoneyKeyAttemptFloor)),
            (EscrowStatus.RefundPending, OperatorRefund o) when !RefundStarted(s) =>
                CancelAuthorisation(Record(s with { NeedsOperator = false }, now, "operator_refund", detail: o.Reason)),
            (EscrowStatus.RefundPending, OperatorRefund) => Decision.Reject(s, Rejection.RefundUnderway),
            (EscrowStatus.PendingUserSetup or EscrowStatus.TransferFailed, OperatorRefund o) => RefundCaptured(s, o.Reason, now),
            (EscrowStatus.Processing, OperatorRefund o) when s.NeedsOperator && s.ChargeId is null =>
                CancelAuthorisation(Transition(s with { NeedsOperator = false }, EscrowStatus.RefundPending, now, "operator_refund",
                    detail: o.Reason)),
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

            // A late or repeated report of a transfer the escrow already made (and may have reversed since) is no lost payout.
            (_, TransferReported t) when s.MadeTransfer(t.TransferId) => Decision.Reject(s, Rejection.AlreadyDone),
            // Adopting a transfer ends the escrow as paid: only one that pays the recipient what it is owed may do that.
            (EscrowStatus.Processing or EscrowStatus.TransferFailed or EscrowStatus.RefundPending, TransferReported t)
                when s.ChargeId is not null
                    && EventClaims.TransferMismatch(s, t.AmountMinor, t.Currency, t.DestinationAccountId, t.RecipientAccountId) is not null
                => Decision.Reject(s, Rejection.TransferMismatch),
            (EscrowStatus.Processing or EscrowStatus.TransferFailed, TransferReported t) when s.ChargeId is not null
                && t.AmountMinor == s.Split.RecipientShare.Minor
                => AdoptReportedTransfer(s, t, now),
            (EscrowStatus.RefundPending, TransferReported t) when s.ChargeId is not null && t.AmountMinor == s.Split.RecipientShare.Minor
                && s.Outbox.Any(e => e.Kind == EffectKind.RefundPayment) => RefundOvertakenByTransfer(s, t, now),
            (EscrowStatus.Refunded, TransferReported t) when s.ChargeId is not null =>
                Decision.Accept(Alert(Record(s, now, "transfer_after_refund", t.AmountMinor, t.TransferId),
                AlertKind.TransferAfterRefund,
                    $"Stripe reports transfer {t.TransferId} ({t.AmountMinor}) for an escrow whose payment was refunded: the money went "
                        + $"out twice.")),
            (EscrowStatus.Released, TransferReported t) =>
                Decision.Accept(Alert(Record(s, now, "second_transfer_reported", t.AmountMinor, t.TransferId), AlertKind.DuplicateTransfer,
                $"Stripe reports transfer {t.TransferId} ({t.AmountMinor}) for an escrow already paid by {s.TransferId}.")),
            (_, TransferReported) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, TransferReversalMade r) when HasEffect(s, r.EffectId, EffectKind.ReverseTransfer) => OnTransferReversalMade(s, r, now),
            (_, TransferReversalMade) => Decision.Reject(s, Rejection.UnknownEffect),

            // This service's own reversal (made, or under way with its answer not yet recorded): its event changes nothing.
            (_, TransferReversed t) when t.TransferId == s.ReversedTransferId
                || (t.TransferId == s.TransferId && s.Outbox.Any(e => e.Kind == EffectKind.ReverseTransfer)) =>
                    Decision.Reject(s, Rejection.AlreadyDone),
            (EscrowStatus.Released, TransferReversed t) when t.TransferId == s.TransferId
                => Decision.Accept(Alert(Record(s, now, "transfer_reversed", t.AmountMinor, t.TransferId), AlertKind.TransferReversed,
                    $"Transfer {t.TransferId} of escrow {s.Id} was reversed ({t.AmountMinor}) outside this service: the recipient no "
                        + $"longer has the share.")),
            (_, TransferReversed) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (EscrowStatus.AwaitingPayment, AuthorisationVoided v)
                => Decision.Accept(AddEffect(RemoveEffects(Transition(s, EscrowStatus.Cancelled, now, "authorisation_voided",
                    detail: v.Reason), EffectKind.CreatePaymentIntent, EffectKind.ConfirmPayment), EffectKind.ReleaseDailySlot)),
            (EscrowStatus.RefundPending, AuthorisationVoided v) when RefundStarted(s)
                => Refunded(RemoveEffects(s, EffectKind.CancelPaymentIntent), now, "payment_intent_cancelled", v.Reason),
            (EscrowStatus.Held or EscrowStatus.RefundPending, AuthorisationVoided v) => VoidedWhileHeld(s, v, now),
            (EscrowStatus.Processing, AuthorisationVoided v) when s.ChargeId is null => VoidedWhileHeld(s, v, now),
            (EscrowStatus.Cancelled or EscrowStatus.PaymentFailed or EscrowStatus.Refunded, AuthorisationVoided) =>
                Decision.Reject(s, Rejection.AlreadyDone),
            (_, AuthorisationVoided) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            (_, ErasePersonalData e) => Erase(s, e, now),

            (_, AlertRaised a) => RaiseAlert(s, a),
            (_, ReplyRefused r) => RaiseAlert(s, ReplyRefusedAlert(s, r)),
            (EscrowStatus.Held, EmailBounced b) when b.Email == EmailKind.NewMessage =>
                RaiseAlert(s, new AlertRaised(AlertKind.RecipientUnreachable,
                $"The new-message e-mail of held escrow {s.Id} to {b.To} bounced ({b.Error}); the recipient will not see the question. "
                + $"Reach the recipient another way, or refund with POST /v1/admin/escrows/{s.Id}/refund.", "new-message")),
            (_, EmailBounced) => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),

            _ => Decision.Reject(s, Rejection.NotAllowed(s.Status, c)),
        };
    }
}
