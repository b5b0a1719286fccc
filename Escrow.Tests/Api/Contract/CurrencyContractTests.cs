namespace Escrow.Tests.Api.Contract;

/// <summary>Escrow:Currencies: only the enabled currencies can price a recipient; each needs its own breaker cap.</summary>
public sealed class CurrencyContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Theory]
    [InlineData("USD")]
    [InlineData("jpy")]
    public async Task A_recipient_in_a_currency_not_enabled_is_refused_with_400_and_nothing_is_stored(string currency)
    {
        var recipient = Contract.NewRecipient();

        var response = await App.Platform().PutAsJsonAsync($"/v1/recipients/{recipient}", new { email = Contract.EmailOf(recipient), displayName = "A", basePriceMinor = 2_500, currency });

        var problem = await Contract.AssertValidationProblemAsync(response, "currency");
        Assert.Contains("Escrow:Currencies enables EUR", problem.GetProperty("errors").GetProperty("currency")[0].GetString(), StringComparison.Ordinal);
        await Contract.AssertProblemAsync(await App.Platform().GetAsync($"/v1/recipients/{recipient}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Moving_a_euro_recipient_to_a_currency_not_enabled_is_refused_and_keeps_euros()
    {
        var recipient = LifecycleApp.NewRecipientId();
        await App.PutRecipientAsync(recipient, 1_000);

        var response = await App.Platform().PutAsJsonAsync($"/v1/recipients/{recipient}", new { email = Contract.EmailOf(recipient), displayName = "A", basePriceMinor = 2_500, currency = "GBP" });

        await Contract.AssertValidationProblemAsync(response, "currency");
        var stored = await App.GetRecipientAsync(recipient);
        Assert.Equal(("EUR", 1_000L), (stored.GetProperty("currency").GetString(), stored.GetProperty("basePriceMinor").GetInt64()));
    }

    [Fact]
    public async Task An_enabled_currency_without_its_breaker_cap_stops_the_start_naming_the_key()
    {
        await using var app = new EscrowApiFactory(settings: new Dictionary<string, string?> { ["Escrow:Currencies:0"] = "EUR", ["Escrow:Currencies:1"] = "JPY" });

        var refused = Assert.ThrowsAny<Exception>(() => app.Server);

        Assert.Contains("CircuitBreaker:AmountPerWindowMax:JPY is required", Flatten(refused), StringComparison.Ordinal);
    }

    private static string Flatten(Exception e) => e.InnerException is null ? e.Message : e.Message + " | " + Flatten(e.InnerException);
}

/// <summary>The same API with dollars and yen enabled beside euros.</summary>
public sealed class EnabledCurrencyContractTests(MultiCurrencyApiFixture fixture) : IClassFixture<MultiCurrencyApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Fact]
    public async Task A_recipient_in_an_enabled_currency_is_stored_and_the_breaker_shows_each_currencys_cap()
    {
        var recipient = Contract.NewRecipient();

        var response = await App.Platform().PutAsJsonAsync($"/v1/recipients/{recipient}", new { email = Contract.EmailOf(recipient), displayName = "A", basePriceMinor = 2_500, currency = "jpy" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("JPY", (await App.GetRecipientAsync(recipient)).GetProperty("currency").GetString());
        var breaker = await Contract.JsonOf(await App.Admin().GetAsync("/v1/admin/circuit-breaker"));
        var caps = breaker.GetProperty("currencies").EnumerateArray().Select(c => (c.GetProperty("currency").GetString(), c.GetProperty("refundAmountPerWindowMaxMinor").GetInt64())).ToArray();
        Assert.Equal([("EUR", 10_000L), ("USD", 10_000L), ("GBP", 10_000L), ("JPY", 15_000L)], caps);
    }
}
