using System.Text.Json.Nodes;

namespace Escrow.Tests.Api.Contract;

/// <summary>The Stripe webhook: only correctly signed, fresh events change anything, once.</summary>
public sealed class StripeWebhookContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private async Task<(string Recipient, Guid Id, string PaymentIntentId)> AwaitingPaymentAsync()
    {
        var recipient = await App.NewRecipientAsync();
        var escrow = await App.CreateAwaitingPaymentEscrowAsync(recipient);
        return (recipient, escrow.GetProperty("id").GetGuid(), escrow.GetProperty("paymentIntentId").GetString()!);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("another_secret")]
    [InlineData("malformed")]
    [InlineData("over_another_payload")]
    [InlineData("made_301_seconds_before_now")]
    public async Task An_event_without_a_valid_fresh_signature_answers_400_and_changes_nothing(string signature)
    {
        var (recipient, id, pi) = await AwaitingPaymentAsync();
        var payload = await App.AuthorisedEventAsync(pi);
        var header = signature switch
        {
            "none" => null,
            "another_secret" => Contract.StripeSignature(payload, App.UnixNow(), secret: "whsec_someone_else"),
            "malformed" => "t=1,v1=00",
            "over_another_payload" => Contract.StripeSignature(
                payload.Replace("requires_capture", "requires_payment_method", StringComparison.Ordinal), App.UnixNow()),
            "made_301_seconds_before_now" => Contract.StripeSignature(payload, App.UnixNow() - 301),
            _ => throw new ArgumentOutOfRangeException(nameof(signature), signature, "no such case"),
        };
        await Contract.AssertProblemAsync(await App.PostStripeEventAsync(payload, header), HttpStatusCode.BadRequest);
        Assert.Equal("awaiting_payment", await App.StatusOf(id));
        Assert.Empty(App.MailTo(recipient));
    }

    [Fact]
    public async Task The_sandbox_signed_event_after_confirming_holds_the_escrow_and_a_resend_sends_no_second_email()
    {
        var (recipient, id, pi) = await AwaitingPaymentAsync();
        await App.ConfirmInSandboxAsync(pi);
        await App.WaitForStatusAsync(id, "held");
        await Eventually.UntilAsync(() => Task.FromResult(App.MailTo(recipient).Count(m => m.Tag == "new-message")), n => n == 1, "the new-message email");

        var stripeEvent = Assert.Single(App.Stripe.EventsOfType("payment_intent.amount_capturable_updated"), e => e.ObjectId == pi);
        var resend = await App.CreateClient().PostAsync($"/_sandbox/stripe/events/{stripeEvent.Id}/resend", null);
        Assert.True(resend.IsSuccessStatusCode, $"resend: {(int)resend.StatusCode}");
        var attempts = await Eventually.UntilAsync(() => Task.FromResult(App.Stripe.WebhookAttempts.Where(a => a.EventId == stripeEvent.Id).ToList()), a => a.Count >= 2, "the event delivered twice");
        Assert.All(attempts, a => Assert.Equal(200, a.StatusCode));

        // The same event delivered by hand, signed now: still 200, still a duplicate.
        var again = await App.PostSignedStripeEventAsync(stripeEvent.Json);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.True((await Contract.JsonOf(again)).GetProperty("duplicate").GetBoolean());

        Assert.Equal("held", await App.StatusOf(id));
        Assert.Single(App.MailTo(recipient), m => m.Tag == "new-message");
    }

    [Fact]
    public async Task A_correctly_signed_event_without_data_answers_400_and_is_not_recorded()
    {
        // Found by the 100 000-input fuzz run: a signed body with no "data" answered 500.
        var withData = JsonNode.Parse(App.EventJson("payment_intent.amount_capturable_updated", new JsonObject { ["id"] = "pi_nodata", ["object"] = "payment_intent" }))!.AsObject();
        withData.Remove("data");
        var payload = withData.ToJsonString();
        var first = await App.PostSignedStripeEventAsync(payload);
        Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
        Assert.Equal("application/problem+json", first.Content.Headers.ContentType?.MediaType);
        // Not recorded as processed: the same event, sent again, is refused again rather than taken as a duplicate.
        var again = await App.PostSignedStripeEventAsync(payload);
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
    }

    [Fact]
    public async Task A_correctly_signed_event_of_a_type_the_service_does_not_handle_answers_200()
    {
        var payload = App.EventJson("customer.created", new JsonObject { ["id"] = "cus_" + Guid.NewGuid().ToString("N")[..14], ["object"] = "customer", ["email"] = "x@example.com" });
        var response = await App.PostSignedStripeEventAsync(payload);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True((await Contract.JsonOf(response)).GetProperty("received").GetBoolean());
    }

    [Fact]
    public async Task A_signed_event_whose_amount_differs_leaves_the_escrow_awaiting_payment_and_raises_payment_mismatch()
    {
        var (recipient, id, pi) = await AwaitingPaymentAsync();
        var expected = App.Stripe.GetPaymentIntent(pi)!.Amount;
        var payload = await App.AuthorisedEventAsync(pi, capturable: expected - 1);

        var response = await App.PostSignedStripeEventAsync(payload);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("awaiting_payment", await App.StatusOf(id));
        var alert = Assert.Single(await App.AlertsOfAsync(id, "payment_mismatch"));
        Assert.Equal(JsonValueKindNull, alert.GetProperty("acknowledgedAt").ValueKind);
        Assert.Empty(App.MailTo(recipient));
    }

    private const System.Text.Json.JsonValueKind JsonValueKindNull = System.Text.Json.JsonValueKind.Null;
}
