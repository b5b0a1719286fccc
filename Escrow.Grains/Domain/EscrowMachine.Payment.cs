namespace Escrow.Grains.Domain;

// Paying, replying and reminding: from the PaymentIntent to the release.
public sealed partial class EscrowMachine
{
    private static Decision OnPaymentIntentCreated(EscrowState s, PaymentIntentCreated p, DateTimeOffset now)
    {
        if (!HasEffect(s, p.EffectId, EffectKind.CreatePaymentIntent))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var recorded = Record(RemoveEffect(s, p.EffectId) with { PaymentIntentId = p.PaymentIntentId, ClientSecret = p.ClientSecret }, now,
            "payment_intent_created", p.AmountMinor, p.PaymentIntentId);
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
        var held = Transition(s with { PaymentIntentId = paymentIntentId, HeldAt = now }, EscrowStatus.Held, now, "authorised",
            amountMinor);
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

    private static Decision Release(EscrowState s, DateTimeOffset receivedAt, string source, string? replyText, DateTimeOffset now,
        string? reason = null)
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
        return Decision.Accept(Email(Record(marked, now, reminder == EmailKind.DeadlineReminder75 ? "reminder_75" : "reminder_50"),
            reminder));
    }
}
