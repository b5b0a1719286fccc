using System.Text.RegularExpressions;

namespace Escrow.Tests.Api.Lifecycle;

/// <summary>
/// The Postmark sandbox's outbox over whole lifecycles through the HTTP API (in-memory store, fake clock): after each
/// step the outbox holds exactly the emails due so far, each kind once, to the right party, with the reply address
/// only where the recipient is asked to reply, and the amounts written in the escrow's currency.
/// </summary>
public sealed partial class EmailLifecycleTests
{
    private const string SenderEmail = "bob@example.com";
    private const string RecipientEmail = "alice@example.com";
    private const string ReplyText = "Here is my answer.";

    private const string NewMessage = "new-message";
    private const string PaymentReceipt = "payment-receipt";
    private const string Reminder50 = "deadline-reminder-50";
    private const string Reminder75 = "deadline-reminder-75";
    private const string ReplyForwarded = "reply-forwarded";
    private const string PayoutSent = "payout-sent";
    private const string PendingPayoutSetup = "pending-payout-setup";
    private const string Refund = "refund";
    private const string MissedOpportunity = "missed-opportunity";

    /// <summary>A base price of 10.00 EUR and the 24 h window (x 1.5): 15.00 EUR paid, 75 % of it (11.25 EUR) for the recipient.</summary>
    private const string Amount = "15.00 EUR";
    private const string Share = "11.25 EUR";

    [Fact]
    public async Task Released_path_sends_message_and_receipt_at_hold_each_reminder_once_at_its_moment_then_reply_and_payout_once()
    {
        await using var app = Start();
        var recipient = await app.PayableRecipientAsync();
        var escrow = await HeldWithMailAsync(app, recipient);
        var (id, at50, at75) = (escrow.Id, escrow.At(0.50), escrow.At(0.75));

        app.Clock.SetUtcNow(at50 - TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt);

        app.Clock.SetUtcNow(at50 + TimeSpan.FromSeconds(1));
        await WaitForMailAsync(app, Reminder50);
        await app.WakeAllAsync([id]);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50);
        Assert.True(Single(app, Reminder50).SentAt >= at50, "the 50 % reminder is not sent before half of the window");

        app.Clock.SetUtcNow(at75 - TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50);

        app.Clock.SetUtcNow(at75 + TimeSpan.FromSeconds(1));
        await WaitForMailAsync(app, Reminder75);
        Assert.True(Single(app, Reminder75).SentAt >= at75, "the 75 % reminder is not sent before three quarters of the window");

        // Later wake-ups (ticks, activations) up to the deadline send no reminder again.
        app.Clock.SetUtcNow(escrow.ExpiresAt - TimeSpan.FromMinutes(1));
        await app.WakeAllAsync([id]);
        await app.WakeAllAsync([id]);
        Assert.Equal("held", await app.StatusOfAsync(id));
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75);

        // The recipient replies from a mail client to the reply address.
        var inbound = EscrowApiFactory.InboundReply(await app.ReplyTokenOfAsync(id), from: RecipientEmail, messageId: "inbound-" + id.ToString("N"), text: ReplyText);
        Assert.Equal("accepted", await OutcomeOf(await app.PostInboundAsync(inbound)));
        await app.WaitForStatusAsync(id, "released");
        await WaitForMailAsync(app, PayoutSent);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75, ReplyForwarded, PayoutSent);
        Assert.Contains(ReplyText, Single(app, ReplyForwarded).TextBody, StringComparison.Ordinal);

        // Postmark delivers the same inbound message again, then the recipient replies a second time: no mail.
        var replayed = await app.PostInboundAsync(inbound);
        Assert.Equal(HttpStatusCode.OK, replayed.StatusCode);
        Assert.True((await replayed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean());
        Assert.Equal("ignored:already_replied", await app.EmailReplyAsync(id));

        // Nor does the deadline passing after the release send a reminder, a refund or a missed opportunity.
        app.Clock.SetUtcNow(escrow.ReplyDeadline + TimeSpan.FromHours(1));
        await app.WakeAllAsync([id]);
        Assert.Equal("released", await app.StatusOfAsync(id));
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75, ReplyForwarded, PayoutSent);
    }

    [Fact]
    public async Task Refund_path_sends_the_refund_to_the_sender_and_the_missed_opportunity_to_the_recipient_once_at_deadline_plus_grace()
    {
        await using var app = Start();
        var recipient = await app.PayableRecipientAsync();
        var escrow = await HeldWithMailAsync(app, recipient);
        var id = escrow.Id;

        app.Clock.SetUtcNow(escrow.At(0.50) + TimeSpan.FromSeconds(1));
        await WaitForMailAsync(app, Reminder50);
        app.Clock.SetUtcNow(escrow.At(0.75) + TimeSpan.FromSeconds(1));
        await WaitForMailAsync(app, Reminder75);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75);

        // Past the deadline but within the grace: a reply would still count, so nothing is given back yet.
        Assert.True(escrow.ReplyDeadline > escrow.ExpiresAt, "the reply deadline includes the grace");
        app.Clock.SetUtcNow(escrow.ReplyDeadline - TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        Assert.Equal("held", await app.StatusOfAsync(id));
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75);

        app.Clock.SetUtcNow(escrow.ReplyDeadline + TimeSpan.FromSeconds(1));
        await app.WaitForStatusAsync(id, "refunded");
        await WaitForMailAsync(app, MissedOpportunity);
        await WaitForMailAsync(app, Refund);
        Assert.True(Single(app, Refund).SentAt >= escrow.ReplyDeadline, "the refund is not announced before deadline plus grace");
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75, Refund, MissedOpportunity);

        // Stripe's payment_intent.canceled, later wake-ups and a late reply change nothing in the outbox.
        var canceled = Assert.Single(app.Stripe.EventsOfType("payment_intent.canceled"));
        await Eventually.UntilAsync(() => Task.FromResult(app.Stripe.WebhookAttempts.Any(a => a.EventId == canceled.Id && a.Succeeded)), "payment_intent.canceled delivered");
        app.Clock.SetUtcNow(escrow.ReplyDeadline + TimeSpan.FromHours(2));
        await app.WakeAllAsync([id]);
        Assert.Equal("ignored:reply_too_late", await app.EmailReplyAsync(id));
        Assert.Equal("refunded", await app.StatusOfAsync(id));
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, Reminder50, Reminder75, Refund, MissedOpportunity);
    }

    [Fact]
    public async Task Payout_setup_path_sends_the_onboarding_link_once_then_the_payout_once_payouts_are_enabled()
    {
        await using var app = Start();
        var recipient = LifecycleApp.NewRecipientId();
        await app.PutRecipientAsync(recipient, email: RecipientEmail);
        var escrow = await HeldWithMailAsync(app, recipient);
        var id = escrow.Id;

        Assert.Equal("accepted", await app.EmailReplyAsync(id));
        await app.WaitForStatusAsync(id, "pending_user_setup");
        await WaitForMailAsync(app, PendingPayoutSetup);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, ReplyForwarded, PendingPayoutSetup);

        // The e-mail carries the service's own onboarding link, not a Stripe one; the account is made when it is opened.
        Assert.Contains($"{EscrowApiFactory.PublicBaseUrl}/onboarding/{recipient}?t=", Single(app, PendingPayoutSetup).TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("/connect/onboarding/", Single(app, PendingPayoutSetup).TextBody, StringComparison.Ordinal);
        var accountId = await app.CreateAccountAsync(recipient);

        // An answered escrow gets no deadline reminder while it waits, and is not refunded at the deadline.
        app.Clock.SetUtcNow(escrow.At(0.75) + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        app.Clock.SetUtcNow(escrow.ReplyDeadline + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        Assert.Equal("pending_user_setup", await app.StatusOfAsync(id));
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, ReplyForwarded, PendingPayoutSetup);

        // The recipient finishes onboarding: Stripe's account.updated pays the waiting escrow.
        Assert.NotNull(app.Stripe.EnablePayouts(accountId));
        await app.WaitForStatusAsync(id, "released");
        await WaitForMailAsync(app, PayoutSent);
        Assert.Equal(accountId, Assert.Single(app.TransfersOf(id)).Destination);
        await app.WakeAllAsync([id]);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt, ReplyForwarded, PendingPayoutSetup, PayoutSent);
    }

    /// <summary>The whole service in-process on the in-memory store, with the sandboxes and a fake clock.</summary>
    private static EscrowApiFactory Start()
    {
        var app = new EscrowApiFactory();
        _ = app.Server;
        return app;
    }

    /// <summary>A held escrow whose two emails of the hold are in the outbox, and nothing else.</summary>
    private static async Task<HeldEscrow> HeldWithMailAsync(EscrowApiFactory app, string recipientId)
    {
        var body = await app.CreateHeldEscrowAsync(recipientId);
        Assert.Equal(1_500, body.GetProperty("amountMinor").GetInt64());
        Assert.Equal(1_125, body.GetProperty("recipientShareMinor").GetInt64());
        Assert.Equal("EUR", body.GetProperty("currency").GetString());
        var escrow = new HeldEscrow(
            body.Id(),
            body.GetProperty("createdAt").GetDateTimeOffset(),
            body.GetProperty("expiresAt").GetDateTimeOffset(),
            body.GetProperty("replyDeadline").GetDateTimeOffset());
        Assert.Equal(TimeSpan.FromHours(24), escrow.ExpiresAt - escrow.CreatedAt);

        await Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.Count >= 2), $"escrow {escrow.Id}: the emails of the hold");
        await app.WakeAllAsync([escrow.Id]);
        AssertOutbox(app, escrow, NewMessage, PaymentReceipt);
        return escrow;
    }

    private static Task WaitForMailAsync(EscrowApiFactory app, string tag) =>
        Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.Any(m => m.Tag == tag)), $"a {tag} email");

    private static SandboxEmail Single(EscrowApiFactory app, string tag) => Assert.Single(app.Postmark.Outbox, m => m.Tag == tag);

    /// <summary>
    /// The whole outbox (each test runs its own app with one escrow) is exactly <paramref name="expected"/>, each once,
    /// and every email is addressed and written as its kind requires.
    /// </summary>
    private static void AssertOutbox(EscrowApiFactory app, HeldEscrow escrow, params string[] expected)
    {
        var outbox = app.Postmark.Outbox;
        Assert.Equal(expected.Order(StringComparer.Ordinal), outbox.Select(m => m.Tag ?? "(no tag)").Order(StringComparer.Ordinal));
        var replyAddress = ReplyAddressOf(outbox);
        Assert.Contains(escrow.Id.ToString("N"), replyAddress, StringComparison.Ordinal);
        foreach (var mail in outbox)
        {
            AssertWritten(mail, escrow, replyAddress);
        }
    }

    private static string ReplyAddressOf(IReadOnlyList<SandboxEmail> outbox)
    {
        var replyTo = Assert.Single(outbox, m => m.Tag == NewMessage).ReplyTo;
        Assert.NotNull(replyTo);
        Assert.Matches(ReplyAddressPattern(), replyTo);
        return replyTo;
    }

    private static void AssertWritten(SandboxEmail mail, HeldEscrow escrow, string replyAddress)
    {
        var tag = mail.Tag!;
        Assert.Equal(escrow.Id.ToString("D"), mail.Metadata.GetValueOrDefault("escrow_id"));
        Assert.Equal(tag, mail.Metadata.GetValueOrDefault("kind"));
        Assert.Equal("outbound", mail.MessageStream);
        var (toSender, asksForReply, subject, texts) = Expectations[tag];
        Assert.Equal(toSender ? SenderEmail : RecipientEmail, mail.To);
        Assert.Equal(asksForReply ? replyAddress : null, mail.ReplyTo);
        Assert.StartsWith(subject, mail.Subject, StringComparison.Ordinal);
        foreach (var text in texts)
        {
            Assert.Contains(text, mail.Subject + "\n" + mail.TextBody, StringComparison.Ordinal);
        }
        Assert.False(string.IsNullOrEmpty(mail.HtmlBody), $"{tag} has an HTML body");
        if (toSender)
        {
            // The sender never learns the recipient's address, nor the address that would release the money.
            foreach (var part in new[] { mail.To, mail.Cc, mail.Bcc, mail.ReplyTo, mail.Subject, mail.TextBody, mail.HtmlBody })
            {
                Assert.DoesNotContain(RecipientEmail, part ?? "", StringComparison.OrdinalIgnoreCase);
                Assert.DoesNotContain("reply+", part ?? "", StringComparison.OrdinalIgnoreCase);
            }
        }
    }

    /// <summary>Per kind: to the sender (else the recipient), whether Reply-To is the escrow's reply address, the subject's start, texts it must hold.</summary>
    private static readonly Dictionary<string, (bool ToSender, bool AsksForReply, string Subject, string[] Texts)> Expectations = new(StringComparer.Ordinal)
    {
        [NewMessage] = (false, true, "New paid message: A question", [$"{SenderEmail} paid {Amount}", Share, "Hello, could you answer this question?"]),
        [PaymentReceipt] = (true, false, $"Payment held: {Amount}", ["A question", "not charged", $"{EscrowApiFactory.PublicBaseUrl}/e/"]),
        [Reminder50] = (false, true, "Half of your time is left to reply: A question", [Amount, Share]),
        [Reminder75] = (false, true, "A quarter of your time is left to reply: A question", [Amount, Share]),
        [ReplyForwarded] = (true, false, "Re: A question", ["replied to your message"]),
        [PayoutSent] = (false, false, $"Payout sent: {Share}", ["A question"]),
        [PendingPayoutSetup] = (false, false, $"Set up payouts to receive {Share}", ["A question", $"{EscrowApiFactory.PublicBaseUrl}/onboarding/"]),
        [Refund] = (true, false, $"No reply in time: your payment of {Amount} is given back", ["A question", "not charged"]),
        [MissedOpportunity] = (false, false, "Deadline passed: A question", [Amount]),
    };

    private static async Task<string> OutcomeOf(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.TryGetProperty("outcome", out var outcome) ? outcome.GetString()! : body.ToString();
    }

    [GeneratedRegex("^reply\\+[0-9a-f]{68}@reply\\.test$", RegexOptions.CultureInvariant)]
    private static partial Regex ReplyAddressPattern();

    private sealed record HeldEscrow(Guid Id, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset ReplyDeadline)
    {
        /// <summary>The moment at this fraction of the response window.</summary>
        public DateTimeOffset At(double fraction) => CreatedAt + ((ExpiresAt - CreatedAt) * fraction);
    }
}
