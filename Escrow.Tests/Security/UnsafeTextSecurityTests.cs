namespace Escrow.Tests.Security;

/// <summary>One API process on a real PostgreSQL database, whose text columns refuse NUL.</summary>
public sealed class SecurityPostgresFixture : IAsyncLifetime
{
    public EscrowApiFactory Factory { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.GetAsync();
        ConnectionString = await server.CreateDatabaseAsync("security_text");
        Factory = new EscrowApiFactory(ConnectionString);
        _ = Factory.Server;
    }

    public async Task DisposeAsync() => await Factory.DisposeAsync();
}

/// <summary>
/// NUL characters and unpaired surrogates in any text field: PostgreSQL's text refuses NUL, so each used to fail a
/// request with a 5xx. The API refuses them (400 naming the field), Postmark's mail is cleaned, and nothing changes.
/// </summary>
public sealed class UnsafeTextSecurityTests(SecurityPostgresFixture fixture) : IClassFixture<SecurityPostgresFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<(string Recipient, Guid Id, string Token)> HeldAsync()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        return (recipient, id, await App.ReplyTokenOfAsync(id));
    }

    private Task<HttpResponseMessage> PostInboundJsonAsync(string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/inbound") { Content = Json(json) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{EscrowApiFactory.InboundUser}:{EscrowApiFactory.InboundPassword}")));
        return App.Anonymous().SendAsync(request);
    }

    [Fact]
    public async Task A_NUL_in_the_inbound_From_is_cleaned_and_recorded_instead_of_answering_503_and_releases_nothing()
    {
        var (recipient, id, token) = await HeldAsync();
        // The sender's address with a NUL inside, as Postmark would escape it in JSON.
        var json = JsonSerializer.Serialize(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient)))
            .Replace($"\"{Contract.EmailOf(recipient)}\"", $"\"{recipient}\\u0000@example.com\"", StringComparison.Ordinal);
        Assert.Contains("\\u0000", json, StringComparison.Ordinal);

        var response = await PostInboundJsonAsync(json);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("ignored:unknown_sender", (await Contract.JsonOf(response)).GetProperty("outcome").GetString());
        var recorded = Assert.Single(await App.Store().GetInboundMessagesAsync(id));
        Assert.Equal($"{recipient}\uFFFD@example.com", recorded.From);
        Assert.Equal("held", (await App.GetEscrowAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task An_unpaired_surrogate_in_the_text_of_a_genuine_reply_is_cleaned_and_the_reply_still_counts()
    {
        var (recipient, id, token) = await HeldAsync();
        var json = JsonSerializer.Serialize(EscrowApiFactory.InboundReply(token, Contract.EmailOf(recipient), text: "Here is my answer: SURROGATE"))
            .Replace("SURROGATE", "\\ud800 and \\u0000", StringComparison.Ordinal);

        var response = await PostInboundJsonAsync(json);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("accepted", (await Contract.JsonOf(response)).GetProperty("outcome").GetString());
        Assert.Contains("\uFFFD and \uFFFD", Assert.Single(await App.Store().GetInboundMessagesAsync(id)).Preview, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("message", "Hello, could you \\u0000 answer this?")]
    [InlineData("message", "Hello, could you \\udc00 answer this?")]
    [InlineData("subject", "A \\ud83d question")]
    public async Task A_NUL_or_unpaired_surrogate_in_a_new_escrow_is_refused_with_400_naming_the_field_and_creates_nothing(string field, string value)
    {
        var recipient = await App.NewRecipientAsync();
        var body = JsonSerializer.SerializeToNode(EscrowApiFactory.EscrowBody(recipient))!.AsObject();
        body[field] = "PLACEHOLDER";
        var json = body.ToJsonString().Replace("PLACEHOLDER", value, StringComparison.Ordinal);
        var key = Guid.NewGuid().ToString();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows") { Content = Json(json) };
        request.Headers.Add("Idempotency-Key", key);

        var response = await App.Anonymous().SendAsync(request);

        await Contract.AssertValidationProblemAsync(response, field);
        Assert.Null(await App.Grains.GetGrain<IEscrowGrain>(EscrowEndpoints.EscrowIdFor(key)).GetAsync());
        Assert.DoesNotContain(App.Stripe.PaymentIntents, p => p.Metadata.GetValueOrDefault("escrow_id") == EscrowEndpoints.EscrowIdFor(key).ToString());
    }

    [Theory]
    [InlineData("platform", "/v1/escrows/{0}/response", """{"text":"yes\u0000"}""", "text")]
    [InlineData("admin", "/v1/admin/escrows/{0}/refund", """{"reason":"asked\u0000"}""", "reason")]
    public async Task A_NUL_in_a_platform_reply_or_an_operators_reason_is_refused_with_400_and_the_escrow_stays_held(
        string caller, string route, string json, string field)
    {
        var (_, id, _) = await HeldAsync();
        var client = caller == "admin" ? App.Admin() : App.Platform();

        var response = await client.PostAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, route, id), Json(json));

        await Contract.AssertValidationProblemAsync(response, field);
        Assert.Equal("held", (await App.GetEscrowAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_NUL_in_a_recipient_display_name_is_refused_with_400_and_changes_nothing()
    {
        var recipient = await App.NewRecipientAsync();

        var response = await App.Platform().PutAsync($"/v1/recipients/{recipient}",
            Json($$"""{"email":"{{Contract.EmailOf(recipient)}}","displayName":"Mallory\u0000","basePriceMinor":1,"currency":"EUR"}"""));

        await Contract.AssertValidationProblemAsync(response, "displayName");
        Assert.Equal("Alice", (await App.GetRecipientAsync(recipient)).GetProperty("displayName").GetString());
    }

    [Fact]
    public async Task A_NUL_that_reaches_the_PostgreSQL_store_is_written_as_U_FFFD_instead_of_failing_the_write()
    {
        await using var dataSource = NpgsqlDataSource.Create(fixture.ConnectionString);
        var store = new PostgresEscrowStore(dataSource);
        var id = Guid.NewGuid();
        var at = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

        await store.RaiseAlertAsync(new NewAlert("test", "warning", id, $"nul/{id}", "a provider said \0 here", at));
        await store.RecordInboundMessageAsync(new InboundMessageRecord($"nul-{id}", id, "a\0@example.com", "s\0", at, true, false, null, "p\ud800"));
        var projection = new EscrowProjection(id, "rcp-1", "held", 15_00, "EUR", 12_00, 3_00, "pi_1", null, null, at, at.AddHours(72), at.AddHours(72), at, 0, false, 1);
        await store.SyncEscrowAsync(projection, [new LedgerEntry(id, 1, "held", "held", 15_00, "EUR", at, JsonSerializer.Serialize(new { reason = "x\0y" }))]);

        Assert.Contains(await store.ListAlertsAsync(openOnly: true, limit: 1_000), a => a.Details == "a provider said \uFFFD here");
        var inbound = Assert.Single(await store.GetInboundMessagesAsync(id));
        Assert.Equal(("a\uFFFD@example.com", "s\uFFFD", "p\uFFFD"), (inbound.From, inbound.Subject, inbound.Preview));
        Assert.Contains("x\uFFFDy", Assert.Single(await store.GetLedgerAsync(id)).Data, StringComparison.Ordinal);
    }
}
