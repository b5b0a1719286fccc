namespace Escrow.Tests.Api.Contract;

/// <summary>Idempotency-Key semantics, the recipient's daily limit and declined cards.</summary>
public sealed class IdempotencyAndLimitContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public async Task Posting_an_escrow_without_an_idempotency_key_answers_400_and_creates_nothing(string? key)
    {
        var recipient = await App.NewRecipientAsync();
        var before = App.Stripe.PaymentIntents.Count;
        var response = await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), key);
        await Contract.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(before, App.Stripe.PaymentIntents.Count);
        Assert.Empty(App.MailTo(recipient));
    }

    [Fact]
    public async Task Posting_an_escrow_with_an_idempotency_key_over_255_characters_answers_400()
    {
        var recipient = await App.NewRecipientAsync();
        var before = App.Stripe.PaymentIntents.Count;
        await Contract.AssertProblemAsync(await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), new string('k', 256)), HttpStatusCode.BadRequest);
        Assert.Equal(before, App.Stripe.PaymentIntents.Count);
    }

    [Fact]
    public async Task The_same_key_and_body_twice_return_the_same_escrow_with_exactly_one_payment_intent()
    {
        var recipient = await App.NewRecipientAsync();
        var key = Guid.NewGuid().ToString();
        var body = EscrowApiFactory.EscrowBody(recipient);

        var first = await App.PostEscrowAsync(body, key);
        var second = await App.PostEscrowAsync(body, key);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.True(second.IsSuccessStatusCode, await second.Content.ReadAsStringAsync());
        var a = await Contract.JsonOf(first);
        var b = await Contract.JsonOf(second);
        var id = a.GetProperty("id").GetGuid();
        Assert.Equal(id, b.GetProperty("id").GetGuid());
        Assert.Equal(EscrowEndpoints.EscrowIdFor(key), id);
        Assert.Equal(a.GetProperty("paymentIntentId").GetString(), b.GetProperty("paymentIntentId").GetString());
        Assert.Equal(1, App.PaymentIntentsFor(id));
    }

    [Fact]
    public async Task The_same_key_with_a_different_body_answers_422_idempotency_key_reused_and_keeps_the_first_escrow()
    {
        var recipient = await App.NewRecipientAsync();
        var key = Guid.NewGuid().ToString();
        var first = await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), key);
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var id = (await Contract.JsonOf(first)).GetProperty("id").GetGuid();

        var other = new { recipientId = recipient, senderEmail = "carol@example.com", responseWindow = "PT24H", subject = "Another question", message = "A different message entirely.", paymentMethodId = "pm_card_visa" };
        var response = await App.PostEscrowAsync(other, key);
        var problem = await Contract.AssertProblemAsync(response, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("idempotency_key_reused", problem.GetProperty("rejection").GetString());
        Assert.Equal(1, App.PaymentIntentsFor(id));
        Assert.Equal("held", await App.StatusOf(id));
    }

    [Fact]
    public async Task A_recipient_with_daily_limit_2_gets_two_escrows_and_the_third_answers_429_without_a_payment_intent()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 2);
        await App.CreateHeldEscrowAsync(recipient);
        await App.CreateHeldEscrowAsync(recipient);
        var before = App.Stripe.PaymentIntents.Count;

        var key = Guid.NewGuid().ToString();
        var response = await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), key);
        var problem = await Contract.AssertProblemAsync(response, HttpStatusCode.TooManyRequests);
        Assert.Equal("daily_limit_reached", problem.GetProperty("rejection").GetString());
        Assert.Equal(0, App.PaymentIntentsFor(EscrowEndpoints.EscrowIdFor(key)));
        Assert.Equal(before, App.Stripe.PaymentIntents.Count);
        await Eventually.UntilAsync(() => Task.FromResult(App.MailTo(recipient).Count(m => m.Tag == "new-message")), n => n == 2, "two new-message emails");
    }

    [Fact]
    public async Task A_declined_card_answers_402_with_what_the_sender_needs_to_retry_takes_no_slot_and_sends_nothing()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 2);
        var key = Guid.NewGuid().ToString();
        var response = await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_chargeDeclined"), key);

        var problem = await Contract.AssertProblemAsync(response, HttpStatusCode.PaymentRequired);
        Assert.Equal("payment_failed", problem.GetProperty("rejection").GetString());
        var id = problem.GetProperty("escrowId").GetGuid();
        Assert.Equal(EscrowEndpoints.EscrowIdFor(key), id);
        Assert.Equal("awaiting_payment", problem.GetProperty("escrowStatus").GetString());
        Assert.Equal("card_declined", problem.GetProperty("lastPaymentError").GetString());
        var paymentIntentId = problem.GetProperty("paymentIntentId").GetString()!;
        Assert.StartsWith(paymentIntentId + "_secret_", problem.GetProperty("clientSecret").GetString(), StringComparison.Ordinal);
        Assert.Equal("requires_payment_method", App.Stripe.GetPaymentIntent(paymentIntentId)!.Status);

        // The sender's access token opens the escrow: it waits for another card.
        var sender = App.Anonymous();
        sender.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", problem.GetProperty("accessToken").GetString());
        var view = await sender.GetFromJsonAsync<JsonElement>($"/v1/escrows/{id}");
        Assert.Equal(("awaiting_payment", "card_declined", paymentIntentId),
            (view.GetProperty("status").GetString(), view.GetProperty("lastPaymentError").GetString(), view.GetProperty("paymentIntentId").GetString()));
        Assert.Empty(App.MailTo(recipient));

        // A declined escrow takes no slot (only an authorised payment does): both of today's two are left.
        await App.CreateHeldEscrowAsync(recipient);
        await App.CreateHeldEscrowAsync(recipient);
        var third = await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), Guid.NewGuid().ToString());
        Assert.Equal("daily_limit_reached", await Contract.RejectionOf(third, HttpStatusCode.TooManyRequests));
    }

    [Fact]
    public async Task Retrying_a_declined_request_with_the_same_key_answers_402_again_without_charging_again()
    {
        var recipient = await App.NewRecipientAsync();
        var key = Guid.NewGuid().ToString();
        var body = EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_chargeDeclined");
        await Contract.AssertProblemAsync(await App.PostEscrowAsync(body, key), HttpStatusCode.PaymentRequired);
        await Contract.AssertProblemAsync(await App.PostEscrowAsync(body, key), HttpStatusCode.PaymentRequired);
        Assert.Equal(1, App.PaymentIntentsFor(EscrowEndpoints.EscrowIdFor(key)));
        Assert.Empty(App.MailTo(recipient));
    }
}
