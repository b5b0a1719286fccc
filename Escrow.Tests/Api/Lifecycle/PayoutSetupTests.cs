using Microsoft.Extensions.Options;

namespace Escrow.Tests.Api.Lifecycle;

/// <summary>A reply to a recipient who cannot receive transfers yet: captured, waiting, then paid once when payouts are enabled.</summary>
public sealed class PayoutSetupTests
{
    [Fact]
    public async Task A_reply_to_a_recipient_without_payouts_waits_captured_in_pending_user_setup_and_is_released_once_payouts_are_enabled()
    {
        await using var app = await LifecycleApp.StartAsync("payout_setup");
        var recipient = await app.NewRecipientAsync();
        var escrow = await app.CreateHeldEscrowAsync(recipient);
        var id = escrow.Id();
        var piId = escrow.PaymentIntentId();

        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        var waiting = await app.WaitForStatusAsync(id, "pending_user_setup");
        Assert.Contains("awaiting_payout_setup", waiting.Events());
        Assert.Equal("succeeded", app.Stripe.GetPaymentIntent(piId)!.Status);
        Assert.Single(app.SucceededCaptures(piId));
        Assert.Empty(app.TransfersOf(id));

        var accountId = await app.CreateAccountAsync(recipient);
        Assert.NotNull(app.Stripe.EnablePayouts(accountId));
        var released = await app.WaitForStatusAsync(id, "released");

        var transfer = Assert.Single(app.TransfersOf(id));
        Assert.Equal(accountId, transfer.Destination);
        Assert.Equal(escrow.GetProperty("recipientShareMinor").GetInt64(), transfer.Amount);
        Assert.Equal(app.Stripe.GetPaymentIntent(piId)!.LatestCharge, transfer.SourceTransaction);
        Assert.Equal(transfer.Id, released.GetProperty("transferId").GetString());
        Assert.Single(app.SucceededCaptures(piId));
        Assert.Equal(0, (await app.Grains.GetGrain<IRecipientGrain>(recipient).GetAsync())!.EscrowsAwaitingPayoutSetup);
    }

    /// <summary>
    /// The account.updated webhook is lost: the sandbox's automatic delivery is switched off while payouts are enabled
    /// (SandboxOptions is the live instance the sandbox reads for every new event), so no event ever reaches the API.
    /// </summary>
    [Fact]
    public async Task When_the_account_updated_webhook_is_missed_the_recipient_rereads_the_account_before_a_transfer_and_pays_the_waiting_escrow_too()
    {
        await using var app = await LifecycleApp.StartAsync("payout_missed_webhook");
        var recipient = await app.NewRecipientAsync();
        var first = await app.CreateHeldEscrowAsync(recipient);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(first.Id())).StatusCode);
        await app.WaitForStatusAsync(first.Id(), "pending_user_setup");
        var accountId = await app.CreateAccountAsync(recipient);

        var sandboxOptions = app.Services.GetRequiredService<IOptions<SandboxOptions>>().Value;
        var deliveredBefore = app.Stripe.WebhookAttempts.Count;
        sandboxOptions.DeliverWebhooks = false;
        try
        {
            Assert.NotNull(app.Stripe.EnablePayouts(accountId));
        }
        finally
        {
            sandboxOptions.DeliverWebhooks = true;
        }
        var updated = app.Stripe.EventsOfType("account.updated").Where(e => e.ObjectId == accountId).ToList();
        Assert.NotEmpty(updated);

        // Nothing told the platform: the waiting escrow stays put.
        await app.WakeAllAsync([first.Id()]);
        Assert.Equal("pending_user_setup", await app.StatusOfAsync(first.Id()));
        Assert.DoesNotContain(app.Stripe.WebhookAttempts.Skip(deliveredBefore), a => updated.Any(e => e.Id == a.EventId));

        // A new reply's transfer reads the account from Stripe, finds it enabled, and pays without waiting.
        var second = await app.CreateHeldEscrowAsync(recipient);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(second.Id())).StatusCode);
        var secondReleased = await app.WaitForStatusAsync(second.Id(), "released");
        Assert.DoesNotContain("pending_user_setup", secondReleased.Statuses());
        Assert.Equal(accountId, Assert.Single(app.TransfersOf(second.Id())).Destination);

        // Reading the account also told the escrow that was waiting.
        await app.WaitForStatusAsync(first.Id(), "released");
        var firstTransfer = Assert.Single(app.TransfersOf(first.Id()));
        Assert.Equal(accountId, firstTransfer.Destination);
        Assert.Equal(first.GetProperty("recipientShareMinor").GetInt64(), firstTransfer.Amount);
        Assert.Equal(2, app.Stripe.Transfers.Count);
        Assert.True((await app.GetRecipientAsync(recipient)).GetProperty("payoutsEnabled").GetBoolean());
    }
}
