using Escrow.Grains.Payments;

namespace Escrow.Grains;

/// <summary>What performing one effect produced: the command for the machine to decide (<see cref="EffectFailed"/> when it could not be done).</summary>
/// <param name="RecordedOutside">
/// The effect's completion is durable outside the escrow's state (a sent e-mail's row in the e-mail log, a slot the
/// recipient's and sender's grains keep, an audit row named by the effect): a re-drive finds it there and does not do
/// it again, so the completion need not be written to the escrow's state at once.
/// </param>
public readonly record struct EffectOutcome(EscrowCommand Command, bool RecordedOutside = false)
{
    /// <summary>What the effect found that an operator must see (a transfer in the escrow's group it cannot adopt): decided first.</summary>
    public ImmutableArray<AlertRaised> Findings { get; init; }
}

/// <summary>
/// Performs the outbox effects of an escrow against Stripe, Postmark, the other grains and the store, and turns
/// each answer into a command for the machine. Every call is idempotent, so performing an effect twice after a
/// crash changes nothing.
/// </summary>
public sealed partial class EscrowEffects(
    IGrainFactory grains,
    IPaymentGateway payments,
    IEmailSender email,
    IEscrowStore store,
    IOptions<EscrowOptions> escrowOptions,
    IOptions<PostmarkOptions> postmarkOptions,
    OnboardingLinks onboardingLinks,
    EscrowTokens tokens,
    ILogger<EscrowEffects> logger)
{
    /// <summary>The machine with the policy built from the options, the one instance the escrow grains decide with.</summary>
    public EscrowMachine Machine { get; } = new(escrowOptions.Value.ToPolicy());

    /// <summary>
    /// A one-time e-mail: its "sent" row in the e-mail log keeps a re-drive from sending it twice. PendingPayoutSetup
    /// is a reminder, sent again on purpose.
    /// </summary>
    public static bool IsLoggedEmail(PendingEffect e) => e.Kind == EffectKind.SendEmail && e.Email != EmailKind.PendingPayoutSetup;

    /// <param name="mayHaveRunBefore">
    /// False only for an effect this activation created and has not tried yet: no other activation can have performed
    /// it, so a one-time email needs no look in the email log first.
    /// </param>
    public async Task<EffectOutcome> PerformAsync(EscrowState s, PendingEffect e, DateTimeOffset now, bool mayHaveRunBefore = true)
    {
        using var activity = EscrowTelemetry.Source.StartActivity("escrow.effect");
        activity?.SetTag("escrow.id", s.Id);
        activity?.SetTag("escrow.effect", e.Kind.ToString());
        try
        {
            return e.Kind switch
            {
                EffectKind.CreatePaymentIntent => await CreatePaymentIntentAsync(s, e),
                EffectKind.ConfirmPayment => await ConfirmAsync(s, e),
                EffectKind.CapturePayment => await CaptureAsync(s, e),
                EffectKind.TransferShare => await TransferAsync(s, e, now),
                EffectKind.CancelPaymentIntent => await CancelAsync(s, e),
                EffectKind.RefundPayment => await RefundAsync(s, e),
                EffectKind.ReverseTransfer => await ReverseTransferAsync(s, e),
                EffectKind.RequestRefundPermit => await RequestRefundPermitAsync(s, e, now),
                EffectKind.SendEmail => await SendEmailAsync(s, e, now, mayHaveRunBefore),
                EffectKind.ReleaseDailySlot => await Done(e, Task.WhenAll(
                    grains.GetGrain<IRecipientGrain>(s.RecipientId).ReleaseSlotAsync(s.Id),
                    grains.GetGrain<IClientGuardGrain>(ClientGuardKeys.Sender(s.SenderEmail)).ReleaseUnpaidAsync(s.Id))),
                EffectKind.TakeDailySlot => await TakeDailySlotAsync(s, e),
                EffectKind.AwaitPayoutSetup => await AwaitPayoutSetupAsync(s, e),
                EffectKind.WriteAudit => await WriteAuditAsync(s, e),
                EffectKind.RaiseAlert => await RaiseAlertAsync(s, e, now),
                _ => throw new ArgumentOutOfRangeException(nameof(e), e.Kind, null),
            };
        }
        catch (PaymentGatewayException ex) when (ex.Kind == PaymentErrorKind.Transient)
        {
            LogTransient(s.Id, e.Kind.ToString(), ex.Code);
            return new(new EffectFailed(e.Id, ex.Code, Permanent: false));
        }
        catch (EmailSendException ex)
        {
            LogEmailFailed(s.Id, e.Email?.ToString() ?? "", ex.Message);
            return new(new EffectFailed(e.Id, ex.Transient ? "email_transient" : "email_rejected", Permanent: false));
        }
        catch (Exception ex) when (TransientFailure.Is(ex))
        {
            LogTransient(s.Id, e.Kind.ToString(), ex.GetType().Name);
            return new(new EffectFailed(e.Id, ex.GetType().Name, Permanent: false));
        }
    }

    /// <summary>
    /// Before a refund of an escrow that got no reply in time, the inbound e-mails are looked at: one received by the
    /// deadline whose handling was cut off (still pending) will be retried by Postmark and judged by its first receipt
    /// time, so the refund waits for it instead of taking a permit.
    /// </summary>
    private async Task<EffectOutcome> RequestRefundPermitAsync(EscrowState s, PendingEffect e, DateTimeOffset now)
    {
        if (!s.RefundApproved)
        {
            var pending = (await store.GetInboundMessagesAsync(s.Id))
                .FirstOrDefault(m => m.IgnoredReason == InboundMessageRecord.Pending && Machine.AwaitsReply(s, m.ReceivedAt, now));
            if (pending is not null)
            {
                return new(new ReplyAwaited(e.Id, pending.ReceivedAt));
            }
        }
        return new(new RefundPermitAnswered(e.Id, s.RefundApproved
            ? RefundPermit.Granted
            : await grains.GetGrain<ICircuitBreakerGrain>(0).RequestPermitAsync(s.Id, s.Amount)));
    }

    private async Task<EffectOutcome> CreatePaymentIntentAsync(EscrowState s, PendingEffect e)
    {
        try
        {
            // After a failed try the PaymentIntent may exist (the answer was lost): look for it before making another.
            var intent = e.KeyAttempt > 0 ? await payments.FindPaymentIntentAsync(s.Id, s.CreatedAt - TimeSpan.FromMinutes(5)) : null;
            intent ??= await payments.CreatePaymentIntentAsync(s.Id, s.Amount, s.PaymentMethodId, e.KeyAttempt);
            if (intent.Status == "requires_payment_method" && s.PaymentMethodId is not null)
            {
                // Found after a lost answer: its confirm was declined.
                return new(new PaymentFailed("card_declined", e.Id, intent.Id, intent.ClientSecret));
            }
            return new(new PaymentIntentCreated(e.Id, intent.Id, intent.ClientSecret ?? "", intent.Status, intent.AmountMinor, intent.Currency));
        }
        catch (PaymentGatewayException ex) when (ex.Kind is PaymentErrorKind.Declined or PaymentErrorKind.Rejected)
        {
            return new(new PaymentFailed(ex.Code, e.Id, ex.PaymentIntent?.Id, ex.PaymentIntent?.ClientSecret));
        }
    }

    /// <summary>The sender's retry with another card: the declined PaymentIntent is confirmed again.</summary>
    private async Task<EffectOutcome> ConfirmAsync(EscrowState s, PendingEffect e)
    {
        var paymentMethod = e.Payload ?? s.PaymentMethodId!;
        try
        {
            var intent = e.KeyAttempt > 0 ? await payments.GetPaymentIntentAsync(s.PaymentIntentId!) : null;
            if (intent is null || intent.Status is "requires_payment_method" or "requires_confirmation")
            {
                intent = await payments.ConfirmPaymentIntentAsync(s.Id, s.PaymentIntentId!, paymentMethod, s.PaymentDeclines, e.KeyAttempt);
            }
            return intent.Status == "requires_capture"
                ? new(new PaymentAuthorised(intent.Id, intent.AmountMinor, intent.Currency, e.Id))
                : new(new PaymentFailed(intent.Status, e.Id, intent.Id));
        }
        catch (PaymentGatewayException ex) when (ex.Kind is PaymentErrorKind.Declined or PaymentErrorKind.Rejected)
        {
            return new(new PaymentFailed(ex.Code, e.Id, s.PaymentIntentId));
        }
    }

    private async Task<EffectOutcome> CaptureAsync(EscrowState s, PendingEffect e)
    {
        try
        {
            // After a failed try the capture may have been made (its answer lost): Stripe's PaymentIntent says.
            if (e.KeyAttempt > 0 && await payments.GetPaymentIntentAsync(s.PaymentIntentId!) is { Status: "succeeded", LatestChargeId: { } charge })
            {
                return new(new Captured(e.Id, charge));
            }
            return new(new Captured(e.Id, await payments.CaptureAsync(s.Id, s.PaymentIntentId!, s.Amount, e.KeyAttempt)));
        }
        catch (PaymentGatewayException ex) when (ex.Kind is PaymentErrorKind.Declined or PaymentErrorKind.Rejected)
        {
            return new(new CaptureRejected(e.Id, ex.Code));
        }
    }

    private async Task<EffectOutcome> TransferAsync(EscrowState s, PendingEffect e, DateTimeOffset now)
    {
        var destination = await grains.GetGrain<IRecipientGrain>(s.RecipientId).GetPayoutDestinationAsync();
        if (destination is null)
        {
            return new(new RecipientNotReady(e.Id));
        }
        // Stripe forgets idempotency keys after about a day, and a lost answer may hide a transfer that was made:
        // before any retry, look the escrow's transfer group up and adopt what is there instead of paying twice.
        var findings = new List<AlertRaised>();
        if (s.TransferFailures > 0 || s.TransferKeyAttempt > 0 || s.History.Any(h => h.Event == "transfer_failed")
            || (s.FirstTransferAttemptAt is { } first && now - first >= Machine.Policy.AdoptTransfersAfter))
        {
            var existing = await payments.FindTransfersAsync(s.Id);
            if (existing.Count > 1)
            {
                findings.Add(new AlertRaised(AlertKind.DuplicateTransfer,
                    $"{existing.Count} transfers exist in transfer group {s.Id}: {string.Join(", ", existing.Select(t => t.Id))}.", "group"));
            }
            if (Adoptable(s, existing, destination, findings) is { } found)
            {
                return new(new Transferred(e.Id, found.Id, found.DestinationAccountId, Adopted: true)) { Findings = [.. findings] };
            }
        }
        try
        {
            var transfer = await payments.TransferAsync(s.Id, s.TransferKeyAttempt, s.Split.RecipientShare, destination, s.ChargeId!);
            return new(new Transferred(e.Id, transfer.Id, transfer.DestinationAccountId, Adopted: false)) { Findings = [.. findings] };
        }
        catch (PaymentGatewayException ex)
        {
            // Every transfer failure is visible as transfer_failed and retried on its schedule; only a refusal moves the key on.
            LogTransferFailed(s.Id, ex.Code, ex.Kind.ToString());
            return new(new TransferRejected(e.Id, ex.Code, Permanent: ex.Kind != PaymentErrorKind.Transient)) { Findings = [.. findings] };
        }
    }

    /// <summary>
    /// The transfer of the escrow's group that is its payout (<see cref="EventClaims.TransferMismatch"/>), if any. Any
    /// other transfer there is not adopted: an operator is alerted, and the escrow goes on as if it were not there.
    /// </summary>
    private static TransferInfo? Adoptable(EscrowState s, IReadOnlyList<TransferInfo> found, string? recipientAccountId, List<AlertRaised> findings)
    {
        TransferInfo? adoptable = null;
        foreach (var transfer in found)
        {
            if (transfer.Reversed)
            {
                continue;
            }
            if (EventClaims.TransferMismatch(s, transfer.AmountMinor, transfer.Currency, transfer.DestinationAccountId, recipientAccountId) is { } why)
            {
                findings.Add(new AlertRaised(AlertKind.TransferMismatch, $"Transfer {transfer.Id} in this escrow's group is not adopted: {why}.", transfer.Id));
            }
            else
            {
                adoptable ??= transfer;
            }
        }
        return adoptable;
    }

    /// <summary>
    /// Refunds a captured payment. If a transfer was ever attempted, its answer may have been lost while Stripe made
    /// it: the transfer group is read first, and an existing transfer is reported instead of paying the money twice.
    /// </summary>
    private async Task<EffectOutcome> RefundAsync(EscrowState s, PendingEffect e)
    {
        var findings = new List<AlertRaised>();
        if (s.FirstTransferAttemptAt is not null)
        {
            var account = (await grains.GetGrain<IRecipientGrain>(s.RecipientId).GetAsync())?.StripeAccountId;
            if (Adoptable(s, await payments.FindTransfersAsync(s.Id), account, findings) is { } made)
            {
                return new(new TransferReported(made.Id, made.AmountMinor, made.Currency, made.DestinationAccountId, account)) { Findings = [.. findings] };
            }
        }
        return await RefundPaymentAsync(s, e) with { Findings = [.. findings] };
    }

    private async Task<EffectOutcome> RefundPaymentAsync(EscrowState s, PendingEffect e)
    {
        // After a failed try the refund may have been made (its answer lost): the PaymentIntent's refunds say.
        if (e.KeyAttempt > 0 && (await payments.FindRefundsAsync(s.PaymentIntentId!)).FirstOrDefault() is { } refunded)
        {
            return new(new PaymentRefunded(e.Id, refunded));
        }
        try
        {
            return new(new PaymentRefunded(e.Id, await payments.RefundAsync(s.Id, s.PaymentIntentId!, e.KeyAttempt)));
        }
        catch (PaymentGatewayException ex) when (ex.Kind != PaymentErrorKind.Transient)
        {
            return new(new EffectFailed(e.Id, ex.Code, Permanent: true));
        }
    }

    /// <summary>
    /// Takes the recipient's share back. After a failed try the reversal may have been made (its answer lost): the
    /// transfer's reversals say so first.
    /// </summary>
    private async Task<EffectOutcome> ReverseTransferAsync(EscrowState s, PendingEffect e)
    {
        try
        {
            if (e.KeyAttempt > 0 && (await payments.FindTransferReversalsAsync(s.TransferId!)).FirstOrDefault() is { } made)
            {
                return new(new TransferReversalMade(e.Id, made));
            }
            return new(new TransferReversalMade(e.Id, await payments.ReverseTransferAsync(s.Id, s.TransferId!, s.Split.RecipientShare.Minor, e.KeyAttempt)));
        }
        catch (PaymentGatewayException ex) when (ex.Kind != PaymentErrorKind.Transient)
        {
            return new(new EffectFailed(e.Id, ex.Code, Permanent: true));
        }
    }

    private async Task<EffectOutcome> CancelAsync(EscrowState s, PendingEffect e)
    {
        try
        {
            if (s.PaymentIntentId is not null
                && !(e.KeyAttempt > 0 && (await payments.GetPaymentIntentAsync(s.PaymentIntentId)).Status == "canceled"))
            {
                await payments.CancelAsync(s.Id, s.PaymentIntentId, e.KeyAttempt);
            }
            return new(new PaymentIntentCancelled(e.Id));
        }
        catch (PaymentGatewayException ex) when (ex.Kind != PaymentErrorKind.Transient)
        {
            // Whether this ends the cancel is the machine's rule (a refusal for good is not tried again).
            return new(new EffectFailed(e.Id, ex.Code, Permanent: true));
        }
    }

    private async Task<EffectOutcome> AwaitPayoutSetupAsync(EscrowState s, PendingEffect e)
    {
        var enabled = await grains.GetGrain<IRecipientGrain>(s.RecipientId).AwaitPayoutSetupAsync(s.Id);
        return new(enabled ? new RecipientPayoutsEnabled() : new EffectCompleted(e.Id));
    }

    /// <summary>The metadata key whose value names the effect that sent an e-mail.</summary>
    public const string EffectMetadataKey = "effect_id";

    private async Task<EffectOutcome> RaiseAlertAsync(EscrowState s, PendingEffect e, DateTimeOffset now)
    {
        var (kind, text) = AlertKind.Of(e);
        await store.RaiseAlertAsync(new NewAlert(kind, s.Id, $"{kind.Name}/{s.Id}/{e.AlertKey ?? e.Id.ToString(CultureInfo.InvariantCulture)}", text, now));
        return new(new EffectCompleted(e.Id));
    }

    /// <summary>The row is named by the effect, so writing it again adds nothing: its completion, too, rides on the next write.</summary>
    private async Task<EffectOutcome> WriteAuditAsync(EscrowState s, PendingEffect e)
    {
        var (keyId, action, reason, at) = EscrowAudit.Read(e);
        await store.WriteAuditAsync(new AuditEntry(0, keyId, action, s.Id, reason, at, "accepted", s.RecipientId, EscrowAudit.DedupeKey(s.Id, e.Id)));
        return new(new EffectCompleted(e.Id), RecordedOutside: true);
    }

    /// <summary>
    /// Both calls are idempotent and their grains keep what they did: like a logged e-mail, the completion rides on the
    /// escrow's next write (a re-drive before it only repeats them), so the hold costs no write of its own for it.
    /// </summary>
    private async Task<EffectOutcome> TakeDailySlotAsync(EscrowState s, PendingEffect e)
    {
        await Task.WhenAll(
            grains.GetGrain<IRecipientGrain>(s.RecipientId).TakeSlotAsync(s.Id, s.Amount.Minor, s.RevenueShareBps, s.Amount.Currency.Code),
            grains.GetGrain<IClientGuardGrain>(ClientGuardKeys.Sender(s.SenderEmail)).ReleaseUnpaidAsync(s.Id));
        return new(new EffectCompleted(e.Id), RecordedOutside: true);
    }

    private static async Task<EffectOutcome> Done(PendingEffect e, Task work)
    {
        await work;
        return new(new EffectCompleted(e.Id));
    }
}
