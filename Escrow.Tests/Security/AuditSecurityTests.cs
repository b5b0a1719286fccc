using Escrow.Api.Hosting;

namespace Escrow.Tests.Security;

/// <summary>
/// Acting unrecorded: every call that moves money or changes a recipient leaves an audit row naming the key's id (never
/// the key), readable at GET /v1/admin/audit. In memory here; the insert-only table is checked on PostgreSQL below.
/// </summary>
public sealed class AuditSecurityTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private static readonly string PlatformKeyId = ApiKeyRegistry.KeyId(EscrowApiFactory.PlatformKey);
    private static readonly string AdminKeyId = ApiKeyRegistry.KeyId(EscrowApiFactory.AdminKey);

    private EscrowApiFactory App => fixture.Factory;

    private async Task<(JsonElement[] Items, string Raw)> AuditAsync(string query)
    {
        var response = await App.Admin().GetAsync("/v1/admin/audit?" + query);
        var raw = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, raw);
        using var document = JsonDocument.Parse(raw);
        return ([.. document.RootElement.GetProperty("items").EnumerateArray().Select(e => e.Clone())], raw);
    }

    private static void AssertHoldsNoKey(string raw)
    {
        Assert.DoesNotContain(EscrowApiFactory.PlatformKey, raw, StringComparison.Ordinal);
        Assert.DoesNotContain(EscrowApiFactory.AdminKey, raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_platform_reply_that_releases_money_is_audited_with_the_keys_id()
    {
        var recipient = await App.NewRecipientAsync(payouts: true);
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();

        var reply = await App.Platform().PostAsJsonAsync($"/v1/escrows/{id}/response", new { text = "My answer." });
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);

        var (items, raw) = await AuditAsync($"escrowId={id}");
        var row = Assert.Single(items);
        Assert.Equal(("escrow.reply", PlatformKeyId, id, recipient),
            (row.GetProperty("action").GetString(), row.GetProperty("keyId").GetString(), row.GetProperty("escrowId").GetGuid(), row.GetProperty("recipientId").GetString()));
        Assert.True(row.GetProperty("id").GetInt64() > 0);
        Assert.Equal(App.Clock.GetUtcNow().UtcDateTime, row.GetProperty("at").GetDateTimeOffset().UtcDateTime, TimeSpan.FromSeconds(1));
        AssertHoldsNoKey(raw);
    }

    [Fact]
    public async Task Recipient_changes_and_onboarding_links_are_audited_newest_first()
    {
        var recipient = Contract.NewRecipient();
        await App.PutRecipientAsync(recipient, email: Contract.EmailOf(recipient));
        await App.PutRecipientAsync(recipient, basePriceMinor: 2_000, email: Contract.EmailOf(recipient));
        Assert.Equal(HttpStatusCode.OK, (await App.Platform().PostAsync($"/v1/recipients/{recipient}/onboarding-link", null)).StatusCode);

        var (items, raw) = await AuditAsync($"recipientId={recipient}");
        Assert.Equal(["recipient.onboarding_link", "recipient.upsert", "recipient.upsert"], items.Select(i => i.GetProperty("action").GetString()));
        Assert.All(items, i => Assert.Equal(PlatformKeyId, i.GetProperty("keyId").GetString()));
        Assert.Contains("price 2000 EUR", items[1].GetProperty("detail").GetString(), StringComparison.Ordinal);
        var ids = items.Select(i => i.GetProperty("id").GetInt64()).ToArray();
        Assert.Equal(ids.OrderDescending(), ids);
        AssertHoldsNoKey(raw);
    }

    [Fact]
    public async Task Every_admin_action_is_audited_with_the_admin_keys_id()
    {
        var recipient = await App.NewRecipientAsync();
        var id = (await App.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        // The store keeps microseconds: a second back, so the rows of this test are all after it.
        var since = App.Clock.GetUtcNow().AddSeconds(-1);

        Assert.Equal(HttpStatusCode.OK, (await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason = "the sender asked" })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await App.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/release", new { reason = "too late" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await App.Admin().PostAsync("/v1/admin/circuit-breaker/reset", null)).StatusCode);
        var alert = await App.Store().RaiseAlertAsync(new NewAlert("test", "warning", null, $"audit-test/{Guid.NewGuid()}", "an alert to acknowledge", since));
        Assert.Equal(HttpStatusCode.NoContent, (await App.Admin().PostAsync($"/v1/admin/alerts/{alert.Alert.Id}/ack", null)).StatusCode);

        var (items, raw) = await AuditAsync($"since={Uri.EscapeDataString(since.ToString("O"))}&limit=200");
        string[] adminActions = ["escrow.refund", "escrow.release", "circuit_breaker.reset", "alert.ack"];
        var mine = items.Where(i => adminActions.Contains(i.GetProperty("action").GetString())
                                    && (i.GetProperty("escrowId").ValueKind == JsonValueKind.Null || i.GetProperty("escrowId").GetGuid() == id)).ToArray();
        Assert.Contains(mine, i => i.GetProperty("action").GetString() == "escrow.refund" && i.GetProperty("detail").GetString()!.Contains("the sender asked", StringComparison.Ordinal));
        Assert.Contains(mine, i => i.GetProperty("action").GetString() == "escrow.release" && i.GetProperty("detail").GetString()!.StartsWith("rejected:", StringComparison.Ordinal));
        Assert.Contains(mine, i => i.GetProperty("action").GetString() == "circuit_breaker.reset");
        Assert.Contains(mine, i => i.GetProperty("action").GetString() == "alert.ack" && i.GetProperty("detail").GetString() == $"alert {alert.Alert.Id}");
        Assert.All(mine, i => Assert.Equal(AdminKeyId, i.GetProperty("keyId").GetString()));
        AssertHoldsNoKey(raw);
    }

    [Theory]
    [InlineData("escrowId=not-a-uuid", "escrowId")]
    [InlineData("recipientId=no%20spaces", "recipientId")]
    [InlineData("since=yesterday", "since")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=201", "limit")]
    [InlineData("limit=ten", "limit")]
    public async Task A_malformed_audit_query_gets_400_naming_the_parameter(string query, string field) =>
        await Contract.AssertValidationProblemAsync(await App.Admin().GetAsync("/v1/admin/audit?" + query), field);

    [Fact]
    public async Task The_audit_trail_is_for_operators_only()
    {
        Assert.Equal(HttpStatusCode.Forbidden, (await App.Platform().GetAsync("/v1/admin/audit")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await App.Anonymous().GetAsync("/v1/admin/audit")).StatusCode);
    }
}

/// <summary>Rewriting the trail: on PostgreSQL the audit log is insert-only, and a row written twice (a retry) is kept once.</summary>
public sealed class AuditLogTamperSecurityTests : IAsyncLifetime
{
    private NpgsqlDataSource _dataSource = null!;

    public async Task InitializeAsync() => _dataSource = NpgsqlDataSource.Create(await (await PostgresServer.GetAsync()).CreateDatabaseAsync("audit"));

    public async Task DisposeAsync() => await _dataSource.DisposeAsync();

    [Fact]
    public async Task Audit_rows_cannot_be_updated_deleted_or_truncated_and_a_retried_row_is_kept_once()
    {
        var store = new PostgresEscrowStore(_dataSource);
        var escrowId = Guid.NewGuid();
        var row = new AuditEntry(0, "key-0123456789ab", "escrow.refund", escrowId, "the sender asked", new DateTimeOffset(2026, 12, 4, 17, 0, 0, TimeSpan.Zero), "accepted", "r-1", $"escrow/{escrowId:N}/7");
        await store.WriteAuditAsync(row);
        await store.WriteAuditAsync(row);

        foreach (var sql in (string[])[
            "UPDATE audit_log SET key_id = 'someone-else' WHERE escrow_id = @id",
            "DELETE FROM audit_log WHERE escrow_id = @id",
            "TRUNCATE audit_log"])
        {
            await using var command = _dataSource.CreateCommand(sql);
            command.Parameters.AddWithValue("id", escrowId);
            var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
            Assert.Contains("insert-only", e.MessageText, StringComparison.Ordinal);
        }
        var kept = Assert.Single(await store.QueryAuditAsync(new AuditQuery(escrowId, null, null, 10)));
        Assert.Equal(row with { Id = kept.Id }, kept);
    }
}
