using Microsoft.Extensions.Options;

namespace Escrow.Tests.Api.Lifecycle;

/// <summary>
/// An operation Stripe performed whose every answer was lost (Stripe.net's own retries with the same key included):
/// the next try reads Stripe first and takes what is there instead of making a second PaymentIntent or refund.
/// </summary>
public sealed class StripeAdoptionTests
{
    /// <summary>Stripe.net tries each request three times (maxNetworkRetries: 2) with the same idempotency key.</summary>
    private const int TriesOfOneCall = 3;

    [Fact]
    public async Task A_payment_intent_whose_every_answer_was_lost_is_found_by_listing_and_held_not_created_twice()
    {
        await using var app = await LifecycleApp.StartAsync("adopt_create");
        var recipient = await app.PayableRecipientAsync();
        // Stripe's events are late (they carry no delivery promise): only reading Stripe can find the PaymentIntent.
        app.Services.GetRequiredService<IOptions<SandboxOptions>>().Value.DeliverWebhooks = false;
        app.Stripe.InjectFault(SandboxOperations.PaymentIntentsCreate, SandboxFaultKind.LostResponse, TriesOfOneCall);
        var key = Guid.NewGuid().ToString();

        var first = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), key);
        Assert.True(first.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)first.StatusCode}: {await first.Content.ReadAsStringAsync()}");
        var made = Assert.Single(app.Stripe.PaymentIntents);
        Assert.Equal(TriesOfOneCall, app.Stripe.Requests.Count(r => r.Operation == SandboxOperations.PaymentIntentsCreate));

        // The sender retries the same create once the effect's retry delay has passed; the escrow looks for the
        // PaymentIntent before making another.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var escrow = await Eventually.UntilAsync(
            async () => await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), key),
            r => r.StatusCode == HttpStatusCode.Created, "the retried create to be answered 201");
        var body = await escrow.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        Assert.Equal("held", body.Status());
        Assert.Equal(made.Id, body.PaymentIntentId());
        Assert.Single(app.Stripe.PaymentIntents);
        Assert.Contains(app.Stripe.Requests, r => r.Method == "GET" && r.Path == "/v1/payment_intents");
    }

    [Fact]
    public async Task A_refund_whose_every_answer_was_lost_is_found_on_the_payment_intent_and_not_made_twice()
    {
        await using var app = await LifecycleApp.StartAsync("adopt_refund");
        var id = await app.CapturedAwaitingPayoutSetupAsync();
        app.Stripe.InjectFault(SandboxOperations.RefundsCreate, SandboxFaultKind.LostResponse, TriesOfOneCall);

        var refund = await app.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "the recipient never set up payouts" });
        Assert.True(refund.IsSuccessStatusCode, await refund.Content.ReadAsStringAsync());
        await Eventually.UntilAsync(
            () => Task.FromResult(app.Stripe.Requests.Count(r => r.Operation == SandboxOperations.RefundsCreate)),
            n => n == TriesOfOneCall, "Stripe.net's three tries of the refund");
        var made = Assert.Single(app.Stripe.Refunds);

        // The effect's next try reads the PaymentIntent's refunds first.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await app.WakeAllAsync([id]);
        var refunded = await app.WaitForStatusAsync(id, "refunded");
        Assert.Single(app.Stripe.Refunds);
        Assert.Contains(refunded.GetProperty("history").EnumerateArray(),
            h => h.TryGetProperty("detail", out var detail) && detail.ValueKind == System.Text.Json.JsonValueKind.String && detail.GetString() == made.Id);
        Assert.Equal(TriesOfOneCall, app.Stripe.Requests.Count(r => r.Operation == SandboxOperations.RefundsCreate));
    }
}
