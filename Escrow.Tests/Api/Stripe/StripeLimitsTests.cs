using Escrow.Tests.Sandbox;

namespace Escrow.Tests.Api.Stripe;

/// <summary>Stripe's limits as the service meets them through the sandbox: minimum charges and expiring authorisations.</summary>
public sealed class StripeLimitsTests(MultiCurrencyApiFixture fixture) : IClassFixture<MultiCurrencyApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Theory]
    [MemberData(nameof(StripeMinimumCharges.HighestRefused), MemberType = typeof(StripeMinimumCharges))]
    public async Task A_price_whose_cheapest_window_is_below_stripes_minimum_charge_is_refused_with_400_on_base_price(string currency, long basePriceMinor)
    {
        var recipient = LifecycleApp.NewRecipientId();

        // The default windows multiply by 1.5, 1.2 and 1.0: the 72-hour window charges the base price itself.
        var refused = await App.Platform().PutAsJsonAsync($"/v1/recipients/{recipient}", new { email = "a@example.com", displayName = "A", basePriceMinor, currency });
        var accepted = await App.Platform().PutAsJsonAsync($"/v1/recipients/{recipient}", new { email = "a@example.com", displayName = "A", basePriceMinor = basePriceMinor + 1, currency });

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty("basePriceMinor", out _), problem.ToString());
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal(basePriceMinor + 1, (await App.GetRecipientAsync(recipient)).GetProperty("basePriceMinor").GetInt64());
    }

    [Fact]
    public async Task A_held_authorisation_expired_by_the_card_network_refunds_the_escrow_with_an_authorisation_voided_alert()
    {
        var recipient = await App.PayableRecipientAsync();
        var escrow = await App.CreateHeldEscrowAsync(recipient);
        var piId = escrow.PaymentIntentId();

        var expired = await App.CreateClient().PostAsync($"/_sandbox/stripe/payment_intents/{piId}/expire", null);

        Assert.Equal(HttpStatusCode.OK, expired.StatusCode);
        var refunded = await App.WaitForStatusAsync(escrow.Id(), "refunded");
        Assert.Contains("authorisation_voided", refunded.Events());
        await Eventually.UntilAsync(async () => (await App.AlertsOfAsync(escrow.Id(), "authorisation_voided")).Count == 1, "authorisation_voided alert");
        Assert.Equal("expired", App.Stripe.GetPaymentIntent(piId)!.CancellationReason);
        Assert.Empty(App.SucceededCancels(piId));
        Assert.Empty(App.TransfersOf(escrow.Id()));
    }
}
