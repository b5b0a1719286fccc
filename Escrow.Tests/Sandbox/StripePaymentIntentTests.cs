using Stripe;

namespace Escrow.Tests.Sandbox;

public sealed class StripePaymentIntentTests
{
    [Fact]
    public async Task A_visa_authorisation_holds_the_amount_on_an_uncaptured_charge()
    {
        await using var host = await SandboxTestHost.StartAsync();

        var pi = await host.AuthoriseAsync(5000, "auth-1", "escrow-1");

        Assert.StartsWith("pi_", pi.Id, StringComparison.Ordinal);
        Assert.Equal("requires_capture", pi.Status);
        Assert.Equal(5000, pi.AmountCapturable);
        Assert.Equal(0, pi.AmountReceived);
        Assert.Equal("eur", pi.Currency);
        Assert.Equal("escrow-1", pi.Metadata["escrow_id"]);
        Assert.StartsWith(pi.Id + "_secret_", pi.ClientSecret, StringComparison.Ordinal);
        var charge = await new ChargeService(host.Stripe).GetAsync(pi.LatestChargeId);
        Assert.False(charge.Captured);
        Assert.Equal(pi.Id, charge.PaymentIntentId);
        Assert.Equal(5000, charge.Amount);
    }

    [Fact]
    public async Task An_intent_without_payment_method_requires_one_and_can_be_confirmed_later()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var service = new PaymentIntentService(host.Stripe);

        var created = await service.CreateAsync(new PaymentIntentCreateOptions
        {
            Amount = 1200, Currency = "EUR", CaptureMethod = "manual",
        }, SandboxTestHost.Key("create-1"));
        var confirmed = await service.ConfirmAsync(created.Id,
            new PaymentIntentConfirmOptions { PaymentMethod = "pm_card_visa" }, SandboxTestHost.Key("confirm-1"));

        Assert.Equal("requires_payment_method", created.Status);
        Assert.Equal("eur", created.Currency);
        Assert.Equal("requires_capture", confirmed.Status);
        Assert.Equal("requires_capture", (await service.GetAsync(created.Id)).Status);
    }

    [Fact]
    public async Task Capturing_an_authorisation_succeeds_and_captures_the_charge()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var pi = await host.AuthoriseAsync(4000, "auth-1");

        var captured = await new PaymentIntentService(host.Stripe).CaptureAsync(pi.Id,
            new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-1"));

        Assert.Equal("succeeded", captured.Status);
        Assert.Equal(4000, captured.AmountReceived);
        Assert.Equal(0, captured.AmountCapturable);
        var charge = await new ChargeService(host.Stripe).GetAsync(pi.LatestChargeId);
        Assert.True(charge.Captured);
        Assert.Equal(4000, charge.AmountCaptured);
    }

    [Fact]
    public async Task A_declined_card_raises_402_card_declined_and_leaves_the_intent_requiring_a_payment_method()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var service = new PaymentIntentService(host.Stripe);

        var ex = await Assert.ThrowsAsync<StripeException>(() => service.CreateAsync(new PaymentIntentCreateOptions
        {
            Amount = 5000, Currency = "eur", CaptureMethod = "manual",
            PaymentMethod = "pm_card_chargeDeclined", Confirm = true,
        }, SandboxTestHost.Key("declined-1")));

        Assert.Equal(HttpStatusCode.PaymentRequired, ex.HttpStatusCode);
        Assert.Equal("card_error", ex.StripeError.Type);
        Assert.Equal("card_declined", ex.StripeError.Code);
        Assert.Equal("generic_decline", ex.StripeError.DeclineCode);
        Assert.Equal("Your card was declined.", ex.StripeError.Message);
        var pi = await service.GetAsync(ex.StripeError.PaymentIntent.Id);
        Assert.Equal("requires_payment_method", pi.Status);
        Assert.Equal("card_declined", pi.LastPaymentError.Code);
        Assert.Single(host.Sandbox.EventsOfType("payment_intent.payment_failed"));
    }

    [Fact]
    public async Task Capture_after_cancel_is_rejected_with_payment_intent_unexpected_state()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var service = new PaymentIntentService(host.Stripe);
        var pi = await host.AuthoriseAsync(3000, "auth-1");

        var canceled = await service.CancelAsync(pi.Id,
            new PaymentIntentCancelOptions { CancellationReason = "abandoned" }, SandboxTestHost.Key("cancel-1"));
        var ex = await Assert.ThrowsAsync<StripeException>(() =>
            service.CaptureAsync(pi.Id, new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-1")));

        Assert.Equal("canceled", canceled.Status);
        Assert.Equal("abandoned", canceled.CancellationReason);
        Assert.Equal(HttpStatusCode.BadRequest, ex.HttpStatusCode);
        Assert.Equal("invalid_request_error", ex.StripeError.Type);
        Assert.Equal("payment_intent_unexpected_state", ex.StripeError.Code);
        var charge = host.Sandbox.GetCharge(pi.LatestChargeId);
        Assert.NotNull(charge);
        Assert.False(charge.Captured);
        Assert.True(charge.Refunded);
    }

    [Fact]
    public async Task Cancelling_a_succeeded_intent_is_rejected_with_payment_intent_unexpected_state()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var service = new PaymentIntentService(host.Stripe);
        var pi = await host.AuthoriseAsync(3000, "auth-1");
        await service.CaptureAsync(pi.Id, new PaymentIntentCaptureOptions(), SandboxTestHost.Key("capture-1"));

        var ex = await Assert.ThrowsAsync<StripeException>(() =>
            service.CancelAsync(pi.Id, new PaymentIntentCancelOptions(), SandboxTestHost.Key("cancel-1")));

        Assert.Equal(HttpStatusCode.BadRequest, ex.HttpStatusCode);
        Assert.Equal("payment_intent_unexpected_state", ex.StripeError.Code);
        Assert.Equal("succeeded", host.Sandbox.GetPaymentIntent(pi.Id)?.Status);
    }

    [Fact]
    public async Task An_unknown_payment_intent_is_404_resource_missing()
    {
        await using var host = await SandboxTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<StripeException>(() =>
            new PaymentIntentService(host.Stripe).GetAsync("pi_does_not_exist"));

        Assert.Equal(HttpStatusCode.NotFound, ex.HttpStatusCode);
        Assert.Equal("resource_missing", ex.StripeError.Code);
    }

    [Fact]
    public async Task A_key_that_is_not_a_test_secret_key_is_401()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var client = host.CreateStripeClient("sk_live_nope");

        var ex = await Assert.ThrowsAsync<StripeException>(() => new PaymentIntentService(client).GetAsync("pi_x"));

        Assert.Equal(HttpStatusCode.Unauthorized, ex.HttpStatusCode);
        Assert.Equal("invalid_request_error", ex.StripeError.Type);
        Assert.StartsWith("Invalid API Key provided", ex.StripeError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refunding_a_captured_payment_marks_the_charge_refunded_and_emits_charge_refunded()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var pi = await host.AuthoriseAsync(2500, "auth-1");
        await host.CaptureAsync(pi.Id, "capture-1");

        var refund = await new RefundService(host.Stripe).CreateAsync(
            new RefundCreateOptions { PaymentIntent = pi.Id }, SandboxTestHost.Key("refund-1"));

        Assert.StartsWith("re_", refund.Id, StringComparison.Ordinal);
        Assert.Equal(2500, refund.Amount);
        Assert.Equal(pi.Id, refund.PaymentIntentId);
        Assert.Equal("succeeded", refund.Status);
        var charge = await new ChargeService(host.Stripe).GetAsync(pi.LatestChargeId);
        Assert.True(charge.Refunded);
        Assert.Equal(2500, charge.AmountRefunded);
        Assert.Single(host.Sandbox.EventsOfType("charge.refunded"));
    }

    [Fact]
    public async Task Events_are_listed_newest_first_and_filtered_by_type()
    {
        await using var host = await SandboxTestHost.StartAsync(o => o.DeliverWebhooks = false);
        var first = await host.AuthoriseAsync(1000, "auth-1");
        var second = await host.AuthoriseAsync(2000, "auth-2");
        await new PaymentIntentService(host.Stripe).CaptureAsync(first.Id, new PaymentIntentCaptureOptions(),
            SandboxTestHost.Key("capture-1"));

        var events = await new EventService(host.Stripe).ListAsync(
            new EventListOptions { Type = "payment_intent.amount_capturable_updated", Limit = 10 });

        Assert.Equal(2, events.Data.Count);
        Assert.Equal(second.Id, ((PaymentIntent)events.Data[0].Data.Object).Id);
        Assert.Equal(first.Id, ((PaymentIntent)events.Data[1].Data.Object).Id);
        Assert.Equal("auth-2", events.Data[0].Request.IdempotencyKey);
        Assert.Equal(3, host.Sandbox.Events.Count);
        Assert.Empty(host.Sandbox.WebhookAttempts);
    }

    [Fact]
    public async Task Retrieving_with_expand_latest_charge_returns_the_charge_object()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var pi = await host.AuthoriseAsync(5000, "auth-1");

        var expanded = await new PaymentIntentService(host.Stripe).GetAsync(pi.Id,
            new PaymentIntentGetOptions { Expand = ["latest_charge"] });

        Assert.Equal(pi.LatestChargeId, expanded.LatestCharge.Id);
        Assert.False(expanded.LatestCharge.Captured);
        Assert.Equal(5000, expanded.LatestCharge.Amount);
    }
}
