namespace Escrow.Tests.Api.Operations;

/// <summary>Erasing a person's data on request, deleting a recipient, and the retention of message bodies.</summary>
public sealed class PersonalDataTests
{
    /// <summary>One person's texts, unique to a test, to look for afterwards.</summary>
    private sealed record Person(string Email, string Subject, string Message, string Reply)
    {
        public static Person New()
        {
            var n = Guid.NewGuid().ToString("N")[..10];
            return new($"erase-{n}@example.com", $"Private subject {n}", $"My private message {n}", $"My private reply {n}");
        }

        public string[] Secrets => [Email, Subject, Message, Reply];
    }

    [Fact]
    public async Task After_an_erasure_no_table_and_no_grain_state_holds_the_address_or_the_texts_on_postgresql()
    {
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("privacy");
        await using var app = await LifecycleApp.StartAsync("privacy", connectionString: connectionString);
        var (person, recipient, released) = await HeldForANewPersonAsync(app);
        var reply = await app.PostInboundAsync(EscrowApiFactory.InboundReply(await app.ReplyTokenOfAsync(released), text: person.Reply));
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        await app.WaitForStatusAsync(released, "released");
        var open = await CreateHeldAsync(app, recipient, person);

        // The scan finds what it looks for: before the erasure, the address and the message are stored.
        Assert.NotEmpty(await WhereStoredAsync(connectionString, person.Email));
        Assert.Contains("orleans_grain_state.payload", await WhereStoredAsync(connectionString, person.Message));

        // One escrow is open: refused, and nothing is erased.
        var refused = await EraseAsync(app, person.Email);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("escrow_open", problem.GetProperty("rejection").GetString());
        Assert.Equal([open], problem.GetProperty("escrows").EnumerateArray().Select(e => e.GetGuid()));
        Assert.Equal(person.Email, (await ViewAsync(app, released)).SenderEmail);

        // Once it is finished (and its e-mails sent), the erasure goes through.
        await RefundedByAnOperatorAsync(app, open, "the sender asked");
        var erased = await Eventually.UntilAsync(() => EraseAsync(app, person.Email), r => r.StatusCode == HttpStatusCode.OK, "the erasure once the escrows are finished");
        var body = await erased.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(new[] { released, open }.Order(), body.GetProperty("escrows").EnumerateArray().Select(e => e.GetGuid()).Order());

        foreach (var secret in person.Secrets)
        {
            Assert.Empty(await WhereStoredAsync(connectionString, secret));
        }
        var view = await ViewAsync(app, released);
        Assert.Equal(("erased", "released", 1_500L, 1_125L), (view.SenderEmail, view.Status, view.AmountMinor, view.RecipientShareMinor));
        Assert.NotNull(view.TransferId);
        Assert.Contains(await app.Store().GetLedgerAsync(released), l => l.Kind == "personal_data_erased");
        Assert.Contains(await app.Store().GetLedgerAsync(released), l => l.Kind == "transfer_created" || l.AmountMinor == 1_125);
        var audit = await app.Store().GetAuditAsync(null, 100);
        Assert.Single(audit, a => a.Action == "privacy.erase" && a.Details!.StartsWith("refused", StringComparison.Ordinal));
        Assert.Single(audit, a => a.Action == "privacy.erase" && a.Details!.StartsWith("erased: 2 escrows", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_erasure_works_in_memory_too_and_a_second_one_finds_nothing_left()
    {
        await using var app = InMemory();
        var (person, _, id) = await HeldForANewPersonAsync(app);
        await app.PostInboundAsync(EscrowApiFactory.InboundReply(await app.ReplyTokenOfAsync(id), text: person.Reply));
        await app.WaitForStatusAsync(id, "released");

        var erased = await Eventually.UntilAsync(() => EraseAsync(app, person.Email), r => r.StatusCode == HttpStatusCode.OK, "the erasure");

        Assert.Equal([id], (await erased.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("escrows").EnumerateArray().Select(e => e.GetGuid()));
        Assert.Equal("erased", (await ViewAsync(app, id)).SenderEmail);
        var log = await app.Store().GetEmailLogAsync(id);
        Assert.NotEmpty(log);
        Assert.All(log, l => Assert.Equal("erased", l.Subject));
        Assert.DoesNotContain(log, l => l.To == person.Email);
        Assert.All(await app.Store().GetInboundMessagesAsync(id), m => Assert.Equal(("erased", "erased"), (m.Subject, m.Preview)));
        var again = await EraseAsync(app, person.Email);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Empty((await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("escrows").EnumerateArray());
    }

    [Fact]
    public async Task A_recipient_with_an_open_escrow_cannot_be_deleted_and_once_deleted_gets_no_new_escrows()
    {
        await using var app = InMemory();
        var person = Person.New();
        var recipient = LifecycleApp.NewRecipientId();
        var recipientEmail = $"{recipient}@example.com";
        await app.PutRecipientAsync(recipient, email: recipientEmail);
        var id = await CreateHeldAsync(app, recipient, person);

        var refused = await app.Platform().DeleteAsync($"/v1/recipients/{recipient}");
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Equal(recipientEmail, (await app.GetRecipientAsync(recipient)).GetProperty("email").GetString());

        await RefundedByAnOperatorAsync(app, id, "closing the account");
        var deleted = await Eventually.UntilAsync(() => app.Platform().DeleteAsync($"/v1/recipients/{recipient}"), r => r.StatusCode == HttpStatusCode.OK, "the deletion");

        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await app.Platform().GetAsync($"/v1/recipients/{recipient}")).StatusCode);
        var create = await app.PostEscrowAsync(Body(recipient, person), Guid.NewGuid().ToString());
        Assert.Equal(HttpStatusCode.NotFound, create.StatusCode);
        Assert.Equal("erased", (await ViewAsync(app, id)).SenderEmail);
        Assert.DoesNotContain(await app.Store().GetEmailLogAsync(id), l => l.To == recipientEmail || l.To == person.Email);
        Assert.Contains(await app.Store().GetAuditAsync(null, 100), a => a.Action == "recipient.delete" && a.Details!.Contains("erased: 1 escrows", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Message_bodies_of_escrows_finished_longer_ago_than_the_retention_are_erased_daily_and_the_sender_is_kept()
    {
        await using var app = InMemory();
        var (person, recipient, old) = await HeldForANewPersonAsync(app);
        await RefundedByAnOperatorAsync(app, old, "test");
        await Eventually.UntilAsync(async () => (await ViewAsync(app, old)).PendingEffects == 0, "the refund e-mails sent");
        app.Clock.Advance(TimeSpan.FromDays(80));
        var recent = await CreateHeldAsync(app, recipient, Person.New());
        await RefundedByAnOperatorAsync(app, recent, "test");
        await Eventually.UntilAsync(async () => (await ViewAsync(app, recent)).PendingEffects == 0, "the refund e-mails sent");
        var retention = app.Grains.GetGrain<IRetentionGrain>(0);

        Assert.Equal(0, await retention.RunAsync()); // 80 days: both kept (P90D)
        app.Clock.Advance(TimeSpan.FromDays(11));
        Assert.Equal(1, await retention.RunAsync());
        Assert.Equal(0, await retention.RunAsync());

        var view = await ViewAsync(app, old);
        Assert.Equal(person.Email, view.SenderEmail);
        Assert.Contains("message_bodies_erased", view.History.Select(h => h.Event));
        Assert.All(await app.Store().GetEmailLogAsync(old), l => Assert.Equal("erased", l.Subject));
        Assert.DoesNotContain("message_bodies_erased", (await ViewAsync(app, recent)).History.Select(h => h.Event));
        Assert.Contains(await app.Store().GetEmailLogAsync(recent), l => l.Subject != "erased");
        Assert.Single(await app.Store().GetAuditAsync(null, 100), a => a.Action == RetentionGrain.AuditAction);
    }

    /// <summary>The API with no connection string: everything in memory.</summary>
    private static EscrowApiFactory InMemory()
    {
        var app = new EscrowApiFactory();
        _ = app.Server;
        return app;
    }

    private static async Task<EscrowView> ViewAsync(EscrowApiFactory app, Guid id) => (await app.Grains.GetGrain<IEscrowGrain>(id).GetAsync())!;

    private static object Body(string recipientId, Person p) =>
        new { recipientId, senderEmail = p.Email, responseWindow = "PT24H", subject = p.Subject, message = p.Message, paymentMethodId = "pm_card_visa" };

    private static async Task<Guid> CreateHeldAsync(EscrowApiFactory app, string recipientId, Person p)
    {
        var response = await app.PostEscrowAsync(Body(recipientId, p), Guid.NewGuid().ToString());
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        var id = body.GetProperty("id").GetGuid();
        // The eraser finds a person's escrows in the projection, which the escrow writes just after the create's answer.
        await Eventually.UntilAsync(() => app.Store().GetEscrowAsync(id), p => p is not null, "the escrow's projection");
        return id;
    }

    /// <summary>A held escrow a new person sent to a new recipient who can be paid.</summary>
    private static async Task<(Person Person, string Recipient, Guid Id)> HeldForANewPersonAsync(EscrowApiFactory app)
    {
        var person = Person.New();
        var recipient = await app.PayableRecipientAsync();
        return (person, recipient, await CreateHeldAsync(app, recipient, person));
    }

    private static async Task RefundedByAnOperatorAsync(EscrowApiFactory app, Guid id, string reason)
    {
        Assert.Equal(HttpStatusCode.OK, (await app.Admin().PostAsJsonAsync($"/v1/admin/escrows/{id}/refund", new { reason })).StatusCode);
        await app.WaitForStatusAsync(id, "refunded");
    }

    private static Task<HttpResponseMessage> EraseAsync(EscrowApiFactory app, string email) =>
        app.Admin().PostAsJsonAsync("/v1/admin/privacy/erase", new { email });

    /// <summary>
    /// Every column of every table of the service's schema (text, JSON and binary, the grain state included) that holds
    /// <paramref name="secret"/>, as table.column. The emulators' own schema (what Stripe and Postmark keep) is not ours.
    /// </summary>
    internal static async Task<List<string>> WhereStoredAsync(string connectionString, string secret)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var columns = new List<(string Table, string Column, string Type)>();
        await using (var command = dataSource.CreateCommand("""
            SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')
            """))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                columns.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
            }
        }
        Assert.Contains(columns, c => c.Table == "orleans_grain_state" && c.Column == "payload");
        Assert.Contains(columns, c => c.Table == "email_log" && c.Column == "to_address");
        var hits = new List<string>();
        foreach (var (table, column, type) in columns)
        {
            var where = type == "bytea"
                ? $"position(convert_to($1, 'UTF8') in \"{column}\") > 0 OR position(convert_to(lower($1), 'UTF8') in \"{column}\") > 0"
                : $"strpos(lower(\"{column}\"::text), lower($1)) > 0";
            await using var count = dataSource.CreateCommand($"SELECT count(*) FROM \"{table}\" WHERE {where}");
            count.Parameters.AddWithValue(secret);
            if ((long)(await count.ExecuteScalarAsync())! > 0)
            {
                hits.Add($"{table}.{column}");
            }
        }
        return hits;
    }
}
