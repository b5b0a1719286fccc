namespace Escrow.Tests.Api.Contract;

/// <summary>Enum-like inputs that clients commonly write in another case are accepted and stored in the canonical case.</summary>
public sealed class LenientInputContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Theory]
    [InlineData("eur")]
    [InlineData("Eur")]
    public async Task A_currency_in_any_case_is_accepted_and_stored_upper_case(string currency)
    {
        var recipient = Contract.NewRecipient();
        var put = await App.Platform().PutAsJsonAsync($"/v1/recipients/{recipient}",
            new { email = Contract.EmailOf(recipient), displayName = "Alice", basePriceMinor = 1000, currency });
        Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        Assert.Equal("EUR", (await Contract.JsonOf(put)).GetProperty("currency").GetString());
        var read = await App.Platform().GetFromJsonAsync<JsonElement>($"/v1/recipients/{recipient}");
        Assert.Equal("EUR", read.GetProperty("currency").GetString());
    }

    [Fact]
    public async Task A_response_window_in_lower_case_is_the_offered_window()
    {
        var recipient = await App.NewRecipientAsync();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows")
        {
            Content = JsonContent.Create(new
            {
                recipientId = recipient, senderEmail = "bob@example.com", responseWindow = "pt24h", subject = "A question",
                message = "Hello, could you answer this question?", paymentMethodId = "pm_card_visa",
            }),
        };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        var response = await App.Anonymous().SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        Assert.Equal("PT24H", (await Contract.JsonOf(response)).GetProperty("responseWindow").GetString());
    }

    [Fact]
    public async Task An_admin_status_filter_in_upper_case_is_the_snake_case_status()
    {
        var response = await App.Admin().GetAsync("/v1/admin/escrows?status=AWAITING_PAYMENT");
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }
}
