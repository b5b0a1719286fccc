using System.Net;

namespace Escrow.Grains.Email;

/// <summary>Writes, sends, finds and logs a recipient's daily payout-setup reminder (for <see cref="RecipientGrain"/>).</summary>
public sealed class PayoutReminderMail(IEmailSender email, IEscrowStore store, OnboardingLinks links)
{
    public const string Tag = "payout-setup-reminder";

    /// <summary>The reminder's name, carried in its metadata: what Postmark's outbound search looks for after a crash.</summary>
    public static string Key(string recipientId, DateOnly day) => $"recipient/{recipientId}/payout-setup-reminder/{day:yyyy-MM-dd}";

    public async Task<EmailMessage> ComposeAsync(string recipientId, RecipientContact recipient, IReadOnlyList<Guid> escrows, string key)
    {
        // The projection has each escrow's share; one not projected yet is still counted.
        var lines = new List<string>();
        foreach (var id in escrows)
        {
            var p = await store.GetEscrowAsync(id);
            lines.Add(p is null
                ? $"- a message ({id:D})"
                : $"- {EmailComposer.Format(new Money(p.RecipientShareMinor, Currency.Parse(p.Currency)))} for a message of {p.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}");
        }
        var subject = escrows.Count == 1 ? "A payment is waiting for your payout setup" : $"{escrows.Count} payments are waiting for your payout setup";
        var text = $"Hello {recipient.DisplayName},\n\nYou replied to paid messages and earned the following, which we cannot pay until your payout setup is finished:\n\n"
            + string.Join("\n", lines)
            + $"\n\nFinish your payout setup to receive it: {links.Start(recipientId)}\n\nThis reminder comes at most once a day while payments wait.\n";
        var html = "<html><body>" + string.Join("", text.Split("\n\n").Select(p => $"<p>{WebUtility.HtmlEncode(p).Replace("\n", "<br>", StringComparison.Ordinal)}</p>")) + "</body></html>";
        var metadata = new Dictionary<string, string> { ["kind"] = Tag, ["recipient_id"] = recipientId, [EscrowEffects.EffectMetadataKey] = key };
        return new EmailMessage(recipient.Email, subject, text, html, Tag, null, metadata);
    }

    public async Task<string> SendAsync(EmailMessage message)
    {
        var id = await email.SendAsync(message);
        EscrowTelemetry.EmailsSent.Add(1, new KeyValuePair<string, object?>("kind", Tag), new KeyValuePair<string, object?>("outcome", "sent"));
        return id;
    }

    public Task<string?> FindSentAsync(string key) => email.FindSentAsync(EscrowEffects.EffectMetadataKey, key);

    /// <summary>One e-mail log row per listed escrow, so each escrow's e-mails show the reminder.</summary>
    public async Task LogAsync(IReadOnlyList<Guid> escrows, EmailMessage message, string outcome, string? providerMessageId, DateTimeOffset at)
    {
        foreach (var id in escrows)
        {
            await store.LogEmailAsync(new EmailLogEntry(id, Tag, message.To, message.Subject, outcome, providerMessageId, null, at));
        }
    }
}
