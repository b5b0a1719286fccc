using Stripe;

namespace Escrow.Tests.Sandbox;

public sealed class StripeWebhookTests
{
    [Fact]
    // Delivery runs several events at once, so in no guaranteed order (as Stripe's): each event is found by its type,
    // and their creation order is read from their `created` times.
    public async Task Payment_intent_events_arrive_signed_and_typed_with_their_creation_times()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var pi = await host.AuthoriseAsync(5000, "auth-1", "escrow-1");
        await host.CaptureAsync(pi.Id, "capture-1");

        await Wait.UntilAsync(() => host.Receiver.Accepted.Count == 2, "both payment intent events are accepted");

        var events = host.Receiver.Accepted;
        Assert.Equal(["payment_intent.amount_capturable_updated", "payment_intent.succeeded"], events.Select(e => e.Type).Order(StringComparer.Ordinal));
        var authorisedEvent = events.Single(e => e.Type == "payment_intent.amount_capturable_updated");
        var succeededEvent = events.Single(e => e.Type == "payment_intent.succeeded");
        var authorised = Assert.IsType<PaymentIntent>(authorisedEvent.Data.Object);
        Assert.Equal(pi.Id, authorised.Id);
        Assert.Equal("requires_capture", authorised.Status);
        Assert.Equal("escrow-1", authorised.Metadata["escrow_id"]);
        Assert.Equal("succeeded", Assert.IsType<PaymentIntent>(succeededEvent.Data.Object).Status);
        Assert.Equal("capture-1", succeededEvent.Request.IdempotencyKey);
        Assert.Equal("2026-10-28.endive", succeededEvent.ApiVersion);
        Assert.True(authorisedEvent.Created <= succeededEvent.Created);
        Assert.Empty(host.Receiver.Rejected);
    }

    [Fact]
    public async Task Transfer_and_account_events_arrive_typed()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: true);
        var pi = await host.AuthoriseAsync(2000, "auth-1");
        await host.CaptureAsync(pi.Id, "capture-1");
        var transfer = await new TransferService(host.Stripe).CreateAsync(new TransferCreateOptions
        {
            Amount = 1500, Currency = "eur", Destination = account.Id, SourceTransaction = pi.LatestChargeId,
        }, SandboxTestHost.Key("transfer-1"));

        await Wait.UntilAsync(() => host.Receiver.Accepted.Any(e => e.Type == "transfer.created"), "transfer.created arrives");

        var updated = host.Receiver.Accepted.Single(e => e.Type == "account.updated");
        var updatedAccount = Assert.IsType<Account>(updated.Data.Object);
        Assert.Equal(account.Id, updatedAccount.Id);
        Assert.True(updatedAccount.PayoutsEnabled);
        var created = Assert.IsType<Transfer>(host.Receiver.Accepted.Single(e => e.Type == "transfer.created").Data.Object);
        Assert.Equal(transfer.Id, created.Id);
        Assert.Equal(account.Id, created.DestinationId);
    }

    [Fact]
    public async Task A_failing_receiver_gets_retries_until_it_accepts()
    {
        await using var host = await SandboxTestHost.StartAsync();
        host.Receiver.FailNext(2);

        var pi = await host.AuthoriseAsync(5000, "auth-1");

        await Wait.UntilAsync(() => host.Receiver.Accepted.Count == 1, "the event is accepted after retries");
        var eventId = host.Receiver.Accepted[0].Id;
        var attempts = host.Sandbox.WebhookAttempts.Where(a => a.EventId == eventId).ToList();
        Assert.Equal([500, 500, 200], attempts.Select(a => a.StatusCode));
        Assert.Equal([1, 2, 3], attempts.Select(a => a.Attempt));
        Assert.Equal(pi.Id, ((PaymentIntent)host.Receiver.Accepted[0].Data.Object).Id);
    }

    [Fact]
    public async Task A_receiver_that_keeps_failing_is_given_up_after_the_maximum_attempts()
    {
        await using var host = await SandboxTestHost.StartAsync(o => o.WebhookMaxAttempts = 3);
        host.Receiver.FailWhen(_ => true);

        await host.AuthoriseAsync(5000, "auth-1");

        await Wait.UntilAsync(() => host.Sandbox.WebhookAttempts.Count == 3, "three attempts are made");
        var fourth = await WaitBrieflyForAsync(() => host.Sandbox.WebhookAttempts.Count > 3);
        Assert.False(fourth);
        Assert.All(host.Sandbox.WebhookAttempts, a => Assert.False(a.Succeeded));
    }

    [Fact]
    public async Task A_retrying_event_does_not_block_later_events()
    {
        await using var host = await SandboxTestHost.StartAsync(o =>
        {
            o.WebhookFirstRetryDelay = TimeSpan.FromMinutes(10);
        });
        host.Receiver.FailWhen(e => e.Type == "payment_intent.amount_capturable_updated");

        var pi = await host.AuthoriseAsync(5000, "auth-1");
        await host.CaptureAsync(pi.Id, "capture-1");

        await Wait.UntilAsync(() => host.Receiver.Accepted.Any(e => e.Type == "payment_intent.succeeded"),
            "the later event is delivered while the earlier one waits for its retry");
        Assert.Single(host.Sandbox.WebhookAttempts, a => !a.Succeeded);
    }

    [Fact]
    public async Task Resending_an_event_delivers_a_duplicate_with_the_same_id()
    {
        await using var host = await SandboxTestHost.StartAsync();
        await host.AuthoriseAsync(5000, "auth-1");
        await Wait.UntilAsync(() => host.Receiver.Accepted.Count == 1, "the first delivery arrives");
        var eventId = host.Receiver.Accepted[0].Id;

        using var resend = await host.Http.PostAsync($"/_sandbox/stripe/events/{eventId}/resend", null);
        using var missing = await host.Http.PostAsync("/_sandbox/stripe/events/evt_nope/resend", null);

        Assert.Equal(HttpStatusCode.Accepted, resend.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await Wait.UntilAsync(() => host.Receiver.Accepted.Count == 2, "the duplicate arrives");
        Assert.All(host.Receiver.Accepted, e => Assert.Equal(eventId, e.Id));
    }

    [Fact]
    public void The_signature_header_matches_what_stripe_net_computes()
    {
        const string payload = "{\"id\":\"evt_1\"}";

        var header = StripeWebhookDeliveryService.SignatureHeader(SandboxTestHost.WebhookSecret, 1_700_000_000, payload);

        Assert.Equal("t=1700000000,v1=" + EventUtility.ComputeSignature(SandboxTestHost.WebhookSecret, "1700000000", payload),
            header);
    }

    [Fact]
    public async Task A_missing_or_malformed_webhook_secret_fails_start_up()
    {
        var ex = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            SandboxTestHost.StartAsync(o => o.WebhookSecret = "not-a-secret"));

        Assert.Contains("WebhookSecret", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Whether the condition becomes true within 300 ms: ten times the sandbox's longest retry delay in these tests,
    /// so an attempt that was going to come would have come. Absence can only be shown over a bounded window.
    /// </summary>
    private static async Task<bool> WaitBrieflyForAsync(Func<bool> condition)
    {
        try
        {
            await Escrow.Testing.Eventually.UntilAsync(() => Task.FromResult(condition()), "a condition that should not come", TimeSpan.FromMilliseconds(300));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
