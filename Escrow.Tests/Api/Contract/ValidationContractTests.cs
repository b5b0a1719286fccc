using System.Text.Json.Nodes;

namespace Escrow.Tests.Api.Contract;

/// <summary>Bad input is refused with a 400 problem naming the field, and nothing is created.</summary>
public sealed class ValidationContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    /// <summary>
    /// A value spec: "missing" removes the field; "long:N" is a string of N letters; "email-long" is a 255-character address;
    /// anything else is a JSON literal.
    /// </summary>
    private static JsonNode? Value(string spec) => spec switch
    {
        _ when spec.StartsWith("long:", StringComparison.Ordinal) => JsonValue.Create(new string('a', int.Parse(spec[5..], System.Globalization.CultureInfo.InvariantCulture))),
        "email-long" => JsonValue.Create(new string('a', 243) + "@example.com"),
        _ => JsonNode.Parse(spec),
    };

    private static string With(JsonObject valid, string field, string spec)
    {
        if (spec == "missing")
        {
            valid.Remove(field);
        }
        else
        {
            valid[field] = Value(spec);
        }
        return valid.ToJsonString();
    }

    private static JsonObject ValidRecipient(string recipient) => new()
    {
        ["email"] = Contract.EmailOf(recipient),
        ["displayName"] = "Alice",
        ["basePriceMinor"] = 1000,
        ["currency"] = "EUR",
        ["revenueShareBps"] = 7500,
        ["dailyLimit"] = 5,
    };

    /// <summary>The body every test creates its escrows with, as a JSON object to break one field of.</summary>
    private static JsonObject ValidEscrow(string recipient) => JsonSerializer.SerializeToNode(EscrowApiFactory.EscrowBody(recipient))!.AsObject();

    private Task<HttpResponseMessage> PutRecipientRawAsync(string recipient, string json, string contentType = "application/json") =>
        App.Platform().PutAsync($"/v1/recipients/{recipient}", new StringContent(json, Encoding.UTF8, contentType));

    private Task<HttpResponseMessage> PostEscrowRawAsync(string json, string contentType = "application/json", string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows") { Content = new StringContent(json, Encoding.UTF8, contentType) };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString());
        return App.Anonymous().SendAsync(request);
    }

    /// <summary>Runs <paramref name="act"/> and asserts it created no PaymentIntent and sent no email.</summary>
    private async Task<HttpResponseMessage> NothingCreatedAsync(Func<Task<HttpResponseMessage>> act)
    {
        var paymentIntents = App.Stripe.PaymentIntents.Count;
        var outbox = App.Postmark.Outbox.Count;
        var response = await act();
        Assert.Equal(paymentIntents, App.Stripe.PaymentIntents.Count);
        Assert.Equal(outbox, App.Postmark.Outbox.Count);
        return response;
    }

    [Theory]
    [InlineData("email", "missing")]
    [InlineData("email", "\"\"")]
    [InlineData("email", "\"not-an-email\"")]
    [InlineData("email", "\"alice@@example.com\"")]
    [InlineData("email", "email-long")]
    [InlineData("email", "42")]
    [InlineData("displayName", "missing")]
    [InlineData("displayName", "\"   \"")]
    [InlineData("displayName", "long:101")]
    [InlineData("displayName", "\"Al\\u0007ice\"")]
    [InlineData("displayName", "true")]
    [InlineData("basePriceMinor", "missing")]
    [InlineData("basePriceMinor", "0")]
    [InlineData("basePriceMinor", "-5")]
    [InlineData("basePriceMinor", "1000001")]
    [InlineData("basePriceMinor", "\"ten\"")]
    [InlineData("basePriceMinor", "10.5")]
    [InlineData("currency", "missing")]
    [InlineData("currency", "\"\"")]
    [InlineData("currency", "\"EURO\"")]
    [InlineData("currency", "\"XYZ\"")]
    [InlineData("currency", "978")]
    [InlineData("revenueShareBps", "-1")]
    [InlineData("revenueShareBps", "10001")]
    [InlineData("revenueShareBps", "\"half\"")]
    [InlineData("dailyLimit", "0")]
    [InlineData("dailyLimit", "1001")]
    [InlineData("dailyLimit", "[1]")]
    public async Task Putting_a_recipient_with_an_invalid_field_answers_400_naming_the_field_and_stores_nothing(string field, string spec)
    {
        var recipient = Contract.NewRecipient();
        var response = await PutRecipientRawAsync(recipient, With(ValidRecipient(recipient), field, spec));
        await Contract.AssertValidationProblemAsync(response, field);
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/recipients/{recipient}"), HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("bad.id")]
    [InlineData("with%20space")]
    public async Task Putting_a_recipient_with_an_invalid_id_answers_400_naming_recipientId(string recipient)
    {
        var response = await PutRecipientRawAsync(recipient, ValidRecipient("x").ToJsonString());
        await Contract.AssertValidationProblemAsync(response, "recipientId");
    }

    [Fact]
    public async Task Putting_a_recipient_with_an_id_over_64_characters_answers_400_naming_recipientId()
    {
        var recipient = new string('r', 65);
        var response = await PutRecipientRawAsync(recipient, ValidRecipient("x").ToJsonString());
        await Contract.AssertValidationProblemAsync(response, "recipientId");
    }

    [Fact]
    public async Task Putting_a_recipient_with_broken_json_answers_400_problem()
    {
        var recipient = Contract.NewRecipient();
        await Contract.AssertProblemAsync(await PutRecipientRawAsync(recipient, "{\"email\": \"a@example.com\","), HttpStatusCode.BadRequest);
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/recipients/{recipient}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Putting_a_recipient_as_form_data_answers_415_problem()
    {
        var recipient = Contract.NewRecipient();
        var response = await PutRecipientRawAsync(recipient, "email=a%40example.com&displayName=A&basePriceMinor=100&currency=EUR", "application/x-www-form-urlencoded");
        await Contract.AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/recipients/{recipient}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Putting_a_recipient_with_a_body_over_256_KiB_answers_413_problem()
    {
        var recipient = Contract.NewRecipient();
        var body = ValidRecipient(recipient);
        body["padding"] = new string('x', 300 * 1024);
        await Contract.AssertProblemAsync(await PutRecipientRawAsync(recipient, body.ToJsonString()), HttpStatusCode.RequestEntityTooLarge);
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/recipients/{recipient}"), HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("recipientId", "missing")]
    [InlineData("recipientId", "\"\"")]
    [InlineData("recipientId", "long:65")]
    [InlineData("senderEmail", "missing")]
    [InlineData("senderEmail", "\"\"")]
    [InlineData("senderEmail", "\"bob\"")]
    [InlineData("senderEmail", "\"bob@example.com\\r\\nBcc: eve@example.com\"")]
    [InlineData("senderEmail", "email-long")]
    [InlineData("senderEmail", "7")]
    [InlineData("responseWindow", "missing")]
    [InlineData("responseWindow", "\"\"")]
    [InlineData("responseWindow", "\"PT5H\"")]
    [InlineData("responseWindow", "\"garbage\"")]
    [InlineData("responseWindow", "\"24h\"")]
    [InlineData("responseWindow", "86400")]
    [InlineData("subject", "missing")]
    [InlineData("subject", "\"  \"")]
    [InlineData("subject", "long:201")]
    [InlineData("subject", "\"line\\nbreak\"")]
    [InlineData("subject", "{}")]
    [InlineData("message", "missing")]
    [InlineData("message", "\"\"")]
    [InlineData("message", "\"too short\"")]
    [InlineData("message", "\"  short   \"")]
    [InlineData("message", "long:10001")]
    [InlineData("message", "false")]
    [InlineData("paymentMethodId", "\"\"")]
    [InlineData("paymentMethodId", "\"card_visa\"")]
    [InlineData("paymentMethodId", "\"pm_\"")]
    [InlineData("paymentMethodId", "\"pm_card visa\"")]
    [InlineData("paymentMethodId", "12")]
    public async Task Posting_an_escrow_with_an_invalid_field_answers_400_naming_the_field_and_creates_nothing(string field, string spec)
    {
        var recipient = await App.NewRecipientAsync();
        var key = Guid.NewGuid().ToString();
        var response = await NothingCreatedAsync(() => PostEscrowRawAsync(With(ValidEscrow(recipient), field, spec), key: key));
        await Contract.AssertValidationProblemAsync(response, field);
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/escrows/{Escrow.Api.Endpoints.EscrowEndpoints.EscrowIdFor(key)}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Posting_an_escrow_with_every_field_invalid_names_every_field()
    {
        var body = new JsonObject { ["recipientId"] = "", ["senderEmail"] = "x", ["responseWindow"] = "PT5H", ["subject"] = "", ["message"] = "short", ["paymentMethodId"] = "visa" };
        var response = await NothingCreatedAsync(() => PostEscrowRawAsync(body.ToJsonString()));
        var problem = await Contract.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        var names = problem.GetProperty("errors").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["message", "paymentMethodId", "recipientId", "responseWindow", "senderEmail", "subject"], names);
    }

    [Theory]
    [InlineData("{\"recipientId\": \"x\",")]
    [InlineData("not json at all")]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[1, 2, 3]")]
    public async Task Posting_an_escrow_with_a_body_that_is_not_a_json_object_answers_400_problem(string json)
    {
        var response = await NothingCreatedAsync(() => PostEscrowRawAsync(json));
        await Contract.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/xml")]
    public async Task Posting_an_escrow_with_another_content_type_answers_415_problem(string contentType)
    {
        var recipient = await App.NewRecipientAsync();
        var response = await NothingCreatedAsync(() => PostEscrowRawAsync(ValidEscrow(recipient).ToJsonString(), contentType));
        await Contract.AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task Posting_an_escrow_with_a_body_over_256_KiB_answers_413_problem()
    {
        var recipient = await App.NewRecipientAsync();
        var body = ValidEscrow(recipient);
        body["padding"] = new string('x', 300 * 1024);
        var response = await NothingCreatedAsync(() => PostEscrowRawAsync(body.ToJsonString()));
        await Contract.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Empty(App.MailTo(recipient));
    }

    [Fact]
    public async Task Posting_an_escrow_for_an_unknown_recipient_answers_404_problem_and_creates_nothing()
    {
        var response = await NothingCreatedAsync(() => PostEscrowRawAsync(ValidEscrow(Contract.NewRecipient()).ToJsonString()));
        var problem = await Contract.AssertProblemAsync(response, HttpStatusCode.NotFound);
        Assert.Equal("unknown_recipient", problem.GetProperty("rejection").GetString());
    }

    [Fact]
    public async Task Getting_an_unknown_recipient_answers_404_problem()
    {
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/recipients/{Contract.NewRecipient()}"), HttpStatusCode.NotFound);
        await Contract.AssertProblemAsync(await App.Platform().PostAsync($"/v1/recipients/{Contract.NewRecipient()}/onboarding-link", null), HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("00000000-0000-0000-0000-000000000000")]
    [InlineData("3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8")]
    [InlineData("not-a-guid")]
    [InlineData("12345")]
    public async Task Getting_an_unknown_or_malformed_escrow_id_answers_404_problem(string id)
    {
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/escrows/{id}"), HttpStatusCode.NotFound);
        await Contract.AssertProblemAsync(await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "r" }), HttpStatusCode.NotFound);
        await Contract.AssertProblemAsync(await App.Platform().PostAsJsonAsync($"/v1/escrows/{id}/response", new { text = "t" }), HttpStatusCode.NotFound);
    }
}
