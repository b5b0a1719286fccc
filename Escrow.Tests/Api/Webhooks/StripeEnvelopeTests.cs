using System.Text.Json.Nodes;
using ContractHelpers = Escrow.Tests.Api.Contract.Contract;

namespace Escrow.Tests.Api.Webhooks;

/// <summary>
/// A signed event is read from its envelope first: only the types the service acts on get Stripe.net's typed parse;
/// any other type is acknowledged without it. The envelope itself is checked as strictly as before.
/// </summary>
public sealed class StripeEnvelopeTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    /// <summary>An escrow waiting for its payment, and its PaymentIntent's JSON with a field Stripe.net cannot read.</summary>
    private async Task<(Guid Id, JsonObject MistypedPaymentIntent)> AwaitingPaymentWithMistypedIntentAsync()
    {
        var recipient = await App.NewRecipientAsync();
        var escrow = await App.CreateAwaitingPaymentEscrowAsync(recipient);
        var pi = await App.PaymentIntentJsonAsync(escrow.GetProperty("paymentIntentId").GetString()!);
        pi["status"] = "requires_capture";
        pi["amount_capturable"] = new JsonObject { ["value"] = 1_500 };
        return (escrow.GetProperty("id").GetGuid(), pi);
    }

    /// <summary>An event of a type the service does not act on, changed by <paramref name="change"/>.</summary>
    private string UnhandledEvent(Action<JsonObject> change)
    {
        var node = JsonNode.Parse(App.EventJson("customer.created", new JsonObject { ["id"] = "cus_" + Guid.NewGuid().ToString("N")[..14], ["object"] = "customer" }))!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    [Fact]
    public async Task An_unhandled_type_whose_object_stripe_net_cannot_read_is_acknowledged_without_a_typed_parse()
    {
        var (id, pi) = await AwaitingPaymentWithMistypedIntentAsync();
        var payload = App.EventJson("payment_intent.succeeded", pi);

        var response = await App.PostSignedStripeEventAsync(payload);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("acknowledged", (await ContractHelpers.JsonOf(response)).GetProperty("outcome").GetString());
        Assert.False(await App.Store().IsWebhookProcessedAsync("stripe", JsonNode.Parse(payload)!["id"]!.GetValue<string>()));
        Assert.Equal("awaiting_payment", await App.StatusOf(id));
    }

    [Fact]
    public async Task The_same_unreadable_object_under_a_type_the_service_acts_on_answers_400_and_changes_nothing()
    {
        var (id, pi) = await AwaitingPaymentWithMistypedIntentAsync();
        var payload = App.EventJson("payment_intent.amount_capturable_updated", pi);

        await ContractHelpers.AssertProblemAsync(await App.PostSignedStripeEventAsync(payload), HttpStatusCode.BadRequest);

        Assert.False(await App.Store().IsWebhookProcessedAsync("stripe", JsonNode.Parse(payload)!["id"]!.GetValue<string>()));
        Assert.Equal("awaiting_payment", await App.StatusOf(id));
    }

    [Theory]
    [InlineData("2020-08-27")]
    [InlineData("2024-06-20.acacia")]
    [InlineData("")]
    [InlineData(null)]
    public async Task An_unhandled_type_with_an_api_version_stripe_net_does_not_support_answers_400(string? apiVersion)
    {
        var payload = UnhandledEvent(e => e["api_version"] = apiVersion);

        await ContractHelpers.AssertProblemAsync(await App.PostSignedStripeEventAsync(payload), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_unhandled_type_without_an_api_version_answers_400()
    {
        var payload = UnhandledEvent(e => e.Remove("api_version"));

        await ContractHelpers.AssertProblemAsync(await App.PostSignedStripeEventAsync(payload), HttpStatusCode.BadRequest);
    }

    public static TheoryData<string, string> BrokenEnvelopes => new()
    {
        { "no id", """{"id":null}""" },
        { "an empty id", """{"id":""}""" },
        { "a numeric id", """{"id":42}""" },
        { "an empty type", """{"type":""}""" },
        { "an object for a type", """{"type":{"name":"customer.created"}}""" },
        { "a numeric api_version", """{"api_version":20261028}""" },
        { "no data", """{"data":null}""" },
        { "data as a string", """{"data":"customer"}""" },
        { "data without an object", """{"data":{"previous_attributes":{}}}""" },
        { "data.object as a string", """{"data":{"object":"cus_1"}}""" },
        { "a thin event", """{"object":"v2.core.event"}""" },
        { "a numeric object kind", """{"object":7}""" },
    };

    [Theory]
    [MemberData(nameof(BrokenEnvelopes))]
    public async Task An_unhandled_type_with_a_broken_envelope_answers_400_and_is_not_recorded(string what, string change)
    {
        var eventId = "evt_test_" + Guid.NewGuid().ToString("N");
        var payload = UnhandledEvent(e =>
        {
            e["id"] = eventId;
            foreach (var (key, value) in JsonNode.Parse(change)!.AsObject())
            {
                e[key] = value?.DeepClone();
            }
        });

        var response = await App.PostSignedStripeEventAsync(payload);

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{what}: {(int)response.StatusCode}");
        await ContractHelpers.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.False(await App.Store().IsWebhookProcessedAsync("stripe", eventId));
    }

    [Fact]
    public async Task An_unhandled_type_without_an_id_answers_400()
    {
        var payload = UnhandledEvent(e => e.Remove("id"));

        await ContractHelpers.AssertProblemAsync(await App.PostSignedStripeEventAsync(payload), HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("not json")]
    [InlineData("{\"id\":\"evt_1\"")]
    public async Task A_signed_body_that_is_not_a_json_object_answers_400(string payload)
    {
        await ContractHelpers.AssertProblemAsync(await App.PostSignedStripeEventAsync(payload), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_signed_event_followed_by_more_json_answers_400()
    {
        var payload = UnhandledEvent(_ => { }) + " {}";

        await ContractHelpers.AssertProblemAsync(await App.PostSignedStripeEventAsync(payload), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_signature_whose_timestamp_does_not_fit_stripe_net_answers_400()
    {
        // Signed correctly over a timestamp Stripe.net cannot read as an Int32 (it threw an OverflowException: a 500).
        var payload = UnhandledEvent(_ => { });
        const long timestamp = 99_999_999_999;

        var response = await App.PostStripeEventAsync(payload, ContractHelpers.StripeSignature(payload, timestamp));

        await ContractHelpers.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }
}
