namespace Escrow.Grains;

// E-mails: sent at most once where Postmark allows it, checked in the log and at Postmark before a re-send.
public sealed partial class EscrowEffects
{
    private async Task<EffectOutcome> SendEmailAsync(EscrowState s, PendingEffect e, DateTimeOffset now, bool mayHaveRunBefore)
    {
        var recipient = await grains.GetGrain<IRecipientGrain>(s.RecipientId).GetAsync();
        var contact = new RecipientContact(recipient?.Email ?? "", recipient?.DisplayName ?? "the recipient");
        // The service's own long-lived link, never a Stripe account link: those are single-use and expire in minutes.
        var onboardingUrl = e.Email == EmailKind.PendingPayoutSetup ? onboardingLinks.Start(s.RecipientId) : null;
        // The escrow keeps only its tokens' hashes: the clear ones are derived again from the token secret.
        var accessToken = e.Email == EmailKind.PaymentReceipt ? tokens.AccessTokenOf(s) : null;
        var statusPageUrl = accessToken is not null ? onboardingLinks.StatusPage(s.Id, accessToken) : null;
        string? replyToken = null;
        if (EmailComposer.CarriesReplyAddress(e.Email!.Value) && (replyToken = tokens.ReplyTokenOf(s)) is null)
        {
            // Retried, and dropped with an alert if it keeps failing: the secret must be put back (docs/SECURITY.md).
            throw new EmailSendException(true, $"Tokens:Secrets no longer holds the secret {s.TokenKeyId} the reply token of escrow {s.Id} was made with; put it back.");
        }
        var cause = Enum.TryParse<RefundCause>(e.Detail, out var parsed) ? parsed : RefundCause.NoReply;
        var message = new EmailComposer(postmarkOptions.Value).Compose(s, e.Email!.Value, contact, e.Payload, onboardingUrl, statusPageUrl, cause, replyToken);
        // The send intent is the effect in the stored outbox (the grain writes it first); the message carries its id,
        // so that Postmark can say later whether it was sent.
        var effectKey = EffectKey(s.Id, e.Id);
        message = message with { Metadata = new Dictionary<string, string>(message.Metadata ?? new Dictionary<string, string>()) { [EffectMetadataKey] = effectKey } };
        // Postmark has no idempotency key: a one-time email already in the log (a re-drive after a crash, a retry) is
        // not sent again. Not in the log, it may still have been sent by an activation that died before logging it:
        // Postmark's outbound search by the effect's id says so, and a message found there is logged, not sent again.
        if (mayHaveRunBefore && IsLoggedEmail(e))
        {
            if ((await store.GetEmailLogAsync(s.Id)).Any(l => l.Kind == message.Tag && l.Outcome == "sent"))
            {
                return new(new EffectCompleted(e.Id), RecordedOutside: true);
            }
            if (await email.FindSentAsync(EffectMetadataKey, effectKey) is { } found)
            {
                var adopted = await LogEmailAsync(s.Id, message, "sent", found, "found by Postmark's outbound search after a re-drive", now);
                return new(new EffectCompleted(e.Id), RecordedOutside: adopted);
            }
        }
        bool logged;
        try
        {
            var id = await email.SendAsync(message);
            EscrowTelemetry.EmailsSent.Add(1, new KeyValuePair<string, object?>("kind", message.Tag), new KeyValuePair<string, object?>("outcome", "sent"));
            logged = await LogEmailAsync(s.Id, message, "sent", id, null, now);
        }
        catch (EmailSendException ex)
        {
            EscrowTelemetry.EmailsSent.Add(1, new KeyValuePair<string, object?>("kind", message.Tag), new KeyValuePair<string, object?>("outcome", "failed"));
            await LogEmailAsync(s.Id, message, ex.Rejected ? "rejected" : "failed", null, ex.Message, now);
            if (!ex.Rejected)
            {
                throw;
            }
            // Postmark refused the address for good (invalid, or an inactive recipient): another try cannot succeed.
            LogEmailFailed(s.Id, e.Email?.ToString() ?? "", ex.Message);
            return new(new EffectFailed(e.Id, $"Postmark error code {ex.ErrorCode}: {ex.Message}", Permanent: true));
        }
        return new(new EffectCompleted(e.Id), RecordedOutside: logged && IsLoggedEmail(e));
    }

    /// <summary>The stable id of one effect of one escrow, as sent in an e-mail's metadata.</summary>
    public static string EffectKey(Guid escrowId, int effectId) => $"{escrowId:D}/{effectId.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Whether the row is durable in the log.</summary>
    private async Task<bool> LogEmailAsync(Guid escrowId, EmailMessage message, string outcome, string? providerId, string? error, DateTimeOffset now)
    {
        try
        {
            await store.LogEmailAsync(new EmailLogEntry(escrowId, message.Tag, message.To, message.Subject, outcome, providerId, error, now));
            return true;
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            LogEmailLogFailed(ex, escrowId);
            return false;
        }
    }
}
