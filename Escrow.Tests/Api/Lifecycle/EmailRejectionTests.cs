namespace Escrow.Tests.Api.Lifecycle;

/// <summary>Postmark's refusals: an address refused for good is not sent to again (an alert says so); a 429 is tried again.</summary>
public sealed class EmailRejectionTests
{
    /// <summary>A held escrow whose first e-mail Postmark refused with <paramref name="fault"/>.</summary>
    private static async Task<Guid> HeldWithTheFirstSendRefusedAsync(EscrowApiFactory app, PostmarkFaultKind fault)
    {
        var recipient = await app.PayableRecipientAsync();
        app.Postmark.InjectFaults(fault, 1);
        return (await app.CreateHeldEscrowAsync(recipient)).Id();
    }

    [Fact]
    public async Task A_new_message_to_an_inactive_recipient_is_not_retried_and_raises_email_rejected()
    {
        await using var app = new EscrowApiFactory();
        var id = await HeldWithTheFirstSendRefusedAsync(app, PostmarkFaultKind.InactiveRecipient);

        var alert = await Eventually.UntilAsync(() => app.OpenAlertsAsync("email_rejected"), a => a.Count > 0, "the email_rejected alert");
        Assert.Contains("406", alert.Single().GetProperty("details").GetString(), StringComparison.Ordinal);
        // Nothing is left to send: no retry waits in the outbox, however long the clock runs.
        await app.WaitForAsync(id, e => e.GetProperty("status").GetString() == "held" && app.Postmark.Outbox.Any(m => m.Tag == "payment-receipt"), "the receipt sent");
        app.Clock.Advance(TimeSpan.FromHours(2));
        await app.WakeAllAsync([id]);
        Assert.Equal(0, (await app.Grains.GetGrain<IEscrowGrain>(id).GetAsync())!.PendingEffects);
        Assert.DoesNotContain(app.Postmark.Outbox, m => m.Tag == "new-message");
    }

    [Fact]
    public async Task A_send_answered_429_is_tried_again_and_delivered()
    {
        await using var app = new EscrowApiFactory();
        var id = await HeldWithTheFirstSendRefusedAsync(app, PostmarkFaultKind.RateLimited);

        await app.WaitForAsync(id, _ =>
        {
            app.Clock.Advance(TimeSpan.FromSeconds(30));
            return app.Postmark.Outbox.Any(m => m.Tag == "new-message" && m.ReplyTo!.Contains(id.ToString("N"), StringComparison.Ordinal));
        }, "the new-message e-mail sent after the 429");
        Assert.Empty(await app.OpenAlertsAsync("email_rejected"));
    }
}
