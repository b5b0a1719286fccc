namespace Escrow.Tests.Api.Operations;

/// <summary>Reconciliation against the sandbox's Stripe and a real PostgreSQL ledger; each test has its own database.</summary>
public sealed class ReconciliationTests : IAsyncLifetime
{
    private EscrowApiFactory _app = null!;
    private string _connectionString = null!;

    public async Task InitializeAsync()
    {
        _connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("reconcile");
        _app = new EscrowApiFactory(_connectionString);
        _ = _app.Server;
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private string Today => _app.Clock.GetUtcNow().ToString("yyyy-MM-dd");

    private async Task<(Guid Released, Guid Refunded)> OneReleasedAndOneRefundedAsync()
    {
        var recipient = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await _app.PutRecipientAsync(recipient);
        await _app.EnablePayoutsAsync(recipient);
        var released = (await _app.CreateHeldEscrowAsync(recipient)).GetProperty("id").GetGuid();
        var refunded = await _app.CreateHeldEscrowAsync(recipient);
        var response = await _app.Platform().PostAsync($"/v1/escrows/{released}/response", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await _app.WaitForStatusAsync(released, "released");
        _app.Clock.SetUtcNow(refunded.GetProperty("replyDeadline").GetDateTimeOffset());
        var refundedId = refunded.GetProperty("id").GetGuid();
        await _app.WaitForStatusAsync(refundedId, "refunded");
        return (released, refundedId);
    }

    private async Task<JsonElement> ReconcileAsync(string day)
    {
        var response = await _app.Admin().PostAsync($"/v1/admin/reconciliation?date={day}", null);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    private static IEnumerable<string> FindingKinds(JsonElement report, Guid escrowId) =>
        report.GetProperty("findings").EnumerateArray()
            .Where(f => f.GetProperty("escrowId").ValueKind == JsonValueKind.String && f.GetProperty("escrowId").GetGuid() == escrowId)
            .Select(f => f.GetProperty("kind").GetString()!);

    [Fact]
    public async Task A_clean_day_reconciles_with_no_findings_and_the_report_is_stored()
    {
        var day = Today;
        var (released, refunded) = await OneReleasedAndOneRefundedAsync();

        var report = await ReconcileAsync(day);

        Assert.Empty(report.GetProperty("findings").EnumerateArray());
        Assert.Equal(2, report.GetProperty("escrowsChecked").GetInt32());
        Assert.Equal(1, report.GetProperty("paymentIntentsChecked").GetInt32());
        var counts = report.GetProperty("counts").EnumerateArray().ToDictionary(c => c.GetProperty("status").GetString()!, c => c.GetProperty("count").GetInt64());
        Assert.Equal(1, counts["released"]);
        Assert.Equal(1, counts["refunded"]);
        var stored = await _app.Admin().GetFromJsonAsync<JsonElement>($"/v1/admin/reconciliation/{day}");
        Assert.Equal(report.GetProperty("generatedAt").GetDateTimeOffset(), stored.GetProperty("generatedAt").GetDateTimeOffset());
        _ = (released, refunded);
    }

    [Fact]
    public async Task A_second_transfer_in_the_escrows_transfer_group_is_found_and_alerted()
    {
        var day = Today;
        var (released, _) = await OneReleasedAndOneRefundedAsync();
        var first = Assert.Single(_app.Stripe.Transfers, t => t.TransferGroup == released.ToString());
        using var stripe = _app.CreateClient();
        stripe.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "sk_test_reconciliation");
        var duplicate = await stripe.PostAsync("/_sandbox/stripe/v1/transfers", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["amount"] = "100",
            ["currency"] = "eur",
            ["destination"] = first.Destination,
            ["transfer_group"] = released.ToString(),
        }));
        Assert.Equal(HttpStatusCode.OK, duplicate.StatusCode);

        var report = await ReconcileAsync(day);

        Assert.Contains("transfer_count", FindingKinds(report, released));
        Assert.Contains("transfer_amount", FindingKinds(report, released));
        var alerts = await _app.Admin().GetFromJsonAsync<JsonElement>("/v1/admin/alerts?open=true");
        Assert.Contains(alerts.GetProperty("items").EnumerateArray(), a => a.GetProperty("kind").GetString() == "reconciliation_transfer_count"
            && a.GetProperty("escrowId").GetGuid() == released);
    }

    [Fact]
    public async Task A_ledger_row_missing_is_found()
    {
        var day = Today;
        var (_, refunded) = await OneReleasedAndOneRefundedAsync();
        await Eventually.UntilAsync(async () => (await _app.GetEscrowAsync(refunded)).GetProperty("history").GetArrayLength() == await LedgerRowsAsync(refunded), "ledger written");
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            // The ledger is insert-only (a trigger refuses deletes); corrupting it on purpose needs the trigger off.
            await using var corrupt = new NpgsqlCommand("""
                ALTER TABLE escrow_ledger DISABLE TRIGGER USER;
                DELETE FROM escrow_ledger WHERE escrow_id = @id AND seq = (SELECT max(seq) FROM escrow_ledger WHERE escrow_id = @id);
                ALTER TABLE escrow_ledger ENABLE TRIGGER USER;
                """, connection);
            corrupt.Parameters.AddWithValue("id", refunded);
            await corrupt.ExecuteNonQueryAsync();
        }

        var report = await ReconcileAsync(day);

        Assert.Contains("ledger_mismatch", FindingKinds(report, refunded));
    }

    [Fact]
    public async Task A_bad_date_is_refused_and_an_unknown_report_is_not_found()
    {
        var bad = await _app.Admin().PostAsync("/v1/admin/reconciliation?date=27-11-2026", null);
        var future = await _app.Admin().PostAsync($"/v1/admin/reconciliation?date={_app.Clock.GetUtcNow().AddDays(2):yyyy-MM-dd}", null);
        var missing = await _app.Admin().GetAsync("/v1/admin/reconciliation/2001-01-01");
        var platform = await _app.Platform().PostAsync($"/v1/admin/reconciliation?date={Today}", null);

        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, future.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, platform.StatusCode);
    }

    [Fact]
    public async Task A_refunded_escrow_whose_reply_was_forwarded_and_an_email_sent_twice_are_found_and_alerted()
    {
        var day = Today;
        var (released, refunded) = await OneReleasedAndOneRefundedAsync();
        // What a reply lost after its e-mail went out leaves behind, and a re-drive that sent an e-mail again.
        await InsertSentEmailAsync(refunded, "reply-forwarded");
        await InsertSentEmailAsync(released, "payout-sent");

        var report = await ReconcileAsync(day);

        Assert.Equal(["refunded_after_reply_forwarded"], FindingKinds(report, refunded));
        Assert.Equal(["email_sent_twice"], FindingKinds(report, released));
        var alerts = await _app.Admin().GetFromJsonAsync<JsonElement>("/v1/admin/alerts?open=true");
        var kinds = alerts.GetProperty("items").EnumerateArray().Select(a => a.GetProperty("kind").GetString()).ToList();
        Assert.Contains("reconciliation_refunded_after_reply_forwarded", kinds);
        Assert.Contains("reconciliation_email_sent_twice", kinds);
    }

    private async Task InsertSentEmailAsync(Guid escrowId, string kind)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand(
            "INSERT INTO email_log (escrow_id, kind, to_address, subject, outcome, provider_message_id, error, at) VALUES (@id, @kind, 'sender@example.com', 's', 'sent', 'pm-test', NULL, now())", connection);
        insert.Parameters.AddWithValue("id", escrowId);
        insert.Parameters.AddWithValue("kind", kind);
        await insert.ExecuteNonQueryAsync();
    }

    private async Task<int> LedgerRowsAsync(Guid escrowId)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM escrow_ledger WHERE escrow_id = @id", connection);
        count.Parameters.AddWithValue("id", escrowId);
        return Convert.ToInt32(await count.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
