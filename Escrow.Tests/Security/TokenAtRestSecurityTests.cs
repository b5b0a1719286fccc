using Orleans.Core.Internal;
using Orleans.Storage;

namespace Escrow.Tests.Security;

/// <summary>
/// Secrets at rest: the escrow keeps only the SHA-256 of its access and reply tokens, which are derived from the token
/// secret. Someone who reads the stored state (a database dump, a backup, the dashboard) cannot open the escrow nor
/// release its money with what they read, nor with a token made with any other secret.
/// </summary>
public sealed class TokenAtRestSecurityTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private sealed record Held(Guid Id, string Recipient, string AccessToken, string ReplyToken, EscrowState Stored);

    private async Task<Held> HeldAsync()
    {
        var recipient = await App.NewRecipientAsync(payouts: true);
        var created = await App.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var replyToken = await App.ReplyTokenOfAsync(id);
        return new Held(id, recipient, created.GetProperty("accessToken").GetString()!, replyToken, (await StoredAsync(App, id)).State!);
    }

    /// <summary>The escrow's grain state as the grain storage holds it.</summary>
    internal static async Task<GrainState<EscrowState>> StoredAsync(EscrowApiFactory app, Guid id)
    {
        var state = new GrainState<EscrowState>();
        await app.Services.GetRequiredKeyedService<IGrainStorage>(EscrowStorage.ProviderName)
            .ReadStateAsync("escrow", app.Grains.GetGrain<IEscrowGrain>(id).GetGrainId(), state);
        Assert.True(state.RecordExists, $"escrow {id} is stored");
        return state;
    }

    private Task<HttpResponseMessage> ReadAsync(Guid id, string bearer) => App.WithBearer(bearer).GetAsync($"/v1/escrows/{id}");

    private async Task<string> ReplyAsync(Held escrow, string token)
    {
        var response = await App.PostInboundAsync(EscrowApiFactory.InboundReply(token, Contract.EmailOf(escrow.Recipient)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("outcome").GetString()!;
    }

    private static bool Holds(ReadOnlySpan<byte> stored, string token) =>
        stored.IndexOf(Encoding.UTF8.GetBytes(token)) >= 0 || stored.IndexOf(Encoding.UTF8.GetBytes(token.ToLowerInvariant())) >= 0;

    [Fact]
    public async Task The_stored_grain_state_holds_neither_token_in_its_bytes_nor_in_what_the_dashboard_shows()
    {
        var escrow = await HeldAsync();
        var bytes = App.Services.GetRequiredKeyedService<IGrainStorageSerializer>(EscrowStorage.ProviderName).Serialize(escrow.Stored).ToArray();
        // The dashboard's grain-state view shows the state's properties.
        var shown = JsonSerializer.Serialize(escrow.Stored);

        // The scan finds what it looks for: the hashes are stored.
        Assert.True(Holds(bytes, escrow.Stored.AccessTokenHash));
        Assert.True(Holds(bytes, escrow.Stored.ReplyTokenHash));
        Assert.Equal(TokenHash.OfAccessToken(escrow.AccessToken), escrow.Stored.AccessTokenHash);
        Assert.Equal(TokenHash.OfReplyToken(escrow.ReplyToken), escrow.Stored.ReplyTokenHash);
        foreach (var token in new[] { escrow.AccessToken, escrow.ReplyToken, escrow.ReplyToken[32..] })
        {
            Assert.False(Holds(bytes, token), "the stored bytes hold a token");
            Assert.DoesNotContain(token, shown, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(("", ""), (escrow.Stored.AccessToken, escrow.Stored.ReplyToken));
        var projection = JsonSerializer.Serialize(await App.Store().GetEscrowAsync(escrow.Id));
        Assert.DoesNotContain(escrow.AccessToken, projection, StringComparison.Ordinal);
        Assert.DoesNotContain(escrow.ReplyToken[32..], projection, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_database_reader_presenting_the_stored_access_token_hash_as_a_bearer_token_is_refused()
    {
        var escrow = await HeldAsync();
        var hash = escrow.Stored.AccessTokenHash;
        // The hash as stored, and re-encoded in the token's own shape (with and without the secret's id).
        var encoded = Convert.ToBase64String(Convert.FromHexString(hash)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        foreach (var presented in new[] { hash, encoded, escrow.Stored.TokenKeyId + encoded })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await ReadAsync(escrow.Id, presented)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await ReadAsync(escrow.Id, escrow.AccessToken)).StatusCode);
    }

    [Fact]
    public async Task A_database_reader_replying_to_an_address_made_of_the_stored_reply_token_hash_releases_nothing()
    {
        var escrow = await HeldAsync();
        var hash = escrow.Stored.ReplyTokenHash;
        foreach (var token in new[] { hash, escrow.Id.ToString("N") + escrow.Stored.TokenKeyId + hash[..32], escrow.Id.ToString("N") + hash[..32] })
        {
            Assert.Equal("ignored:unmatched", await ReplyAsync(escrow, token));
        }
        Assert.Equal("held", await App.StatusOf(escrow.Id));

        Assert.Equal("accepted", await ReplyAsync(escrow, escrow.ReplyToken));
        Assert.NotEqual("held", await App.StatusOf(escrow.Id));
    }

    [Fact]
    public async Task Tokens_derived_with_another_secret_open_and_release_nothing()
    {
        var escrow = await HeldAsync();
        // The attacker knows everything stored (id, creation time, the secret's id), not the secret.
        var forged = new EscrowTokens(["a-guessed-secret-of-thirty-two-chars"]).Issue(escrow.Id, escrow.Stored.CreatedAt);
        var keyId = escrow.Stored.TokenKeyId!;
        var access = keyId + forged.AccessToken[EscrowTokens.KeyIdLength..];
        var reply = escrow.Id.ToString("N") + keyId + forged.ReplyToken[36..];

        Assert.Equal(HttpStatusCode.Unauthorized, (await ReadAsync(escrow.Id, forged.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ReadAsync(escrow.Id, access)).StatusCode);
        Assert.Equal("ignored:unmatched", await ReplyAsync(escrow, forged.ReplyToken));
        Assert.Equal("ignored:unmatched", await ReplyAsync(escrow, reply));
        Assert.Equal("held", await App.StatusOf(escrow.Id));

        // The service's own tokens, derived from its secret, are the ones that work.
        var genuine = new EscrowTokens([EscrowApiFactory.TokenSecret]).Issue(escrow.Id, escrow.Stored.CreatedAt);
        Assert.Equal((escrow.AccessToken, escrow.ReplyToken), (genuine.AccessToken, genuine.ReplyToken));
        Assert.Equal(HttpStatusCode.OK, (await ReadAsync(escrow.Id, escrow.AccessToken)).StatusCode);
    }

    [Fact]
    public async Task A_retried_create_answers_the_same_access_token_and_it_opens_the_escrow()
    {
        var recipient = await App.NewRecipientAsync();
        var key = Guid.NewGuid().ToString();
        var first = await App.CreateHeldEscrowAsync(recipient, key);
        var id = first.GetProperty("id").GetGuid();

        var retried = await App.CreateHeldEscrowAsync(recipient, key);

        Assert.Equal(id, retried.GetProperty("id").GetGuid());
        Assert.Equal(first.GetProperty("accessToken").GetString(), retried.GetProperty("accessToken").GetString());
        Assert.Equal(HttpStatusCode.OK, (await ReadAsync(id, retried.GetProperty("accessToken").GetString()!)).StatusCode);
        // Read with a key, the escrow never shows the token again.
        Assert.Equal(JsonValueKind.Null, (await App.GetEscrowAsync(id)).GetProperty("accessToken").ValueKind);
    }

    [Fact]
    public async Task Reminder_e_mails_days_later_carry_a_reply_address_that_releases()
    {
        await using var app = new EscrowApiFactory();
        var recipient = await app.NewRecipientAsync(payouts: true);
        var created = await app.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var (createdAt, expiresAt) = (created.GetProperty("createdAt").GetDateTimeOffset(), created.GetProperty("expiresAt").GetDateTimeOffset());
        bool Mail(Escrow.Sandbox.SandboxEmail m, string tag) => m.Tag == tag && m.Metadata.GetValueOrDefault("escrow_id") == id.ToString("D");

        // Half and three quarters of the window later, long after the create's answer, each reminder is sent.
        foreach (var (fraction, tag) in new[] { (2, "deadline-reminder-50"), (3, "deadline-reminder-75") })
        {
            app.Clock.SetUtcNow(createdAt + ((expiresAt - createdAt) * fraction / 4) + TimeSpan.FromSeconds(1));
            await app.Grains.GetGrain<IEscrowGrain>(id).WakeAsync();
            await Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.Any(m => Mail(m, tag))), $"the {tag} e-mail");
        }

        var first = Assert.Single(app.Postmark.Outbox, m => Mail(m, "new-message")).ReplyTo;
        var last = Assert.Single(app.Postmark.Outbox, m => Mail(m, "deadline-reminder-75")).ReplyTo!;
        Assert.Equal(first, Assert.Single(app.Postmark.Outbox, m => Mail(m, "deadline-reminder-50")).ReplyTo);
        Assert.Equal(first, last);
        var reply = await app.PostInboundAsync(EscrowApiFactory.InboundReply(last.Split('+', '@')[1], Contract.EmailOf(recipient)));
        Assert.Equal("accepted", (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("outcome").GetString());
    }

    [Fact]
    public async Task An_escrow_stored_with_clear_tokens_before_they_were_hashed_keeps_working_and_keeps_only_hashes_once_it_ends()
    {
        var escrow = await HeldAsync();
        var legacyReply = escrow.Id.ToString("N") + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var legacyAccess = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var grain = App.Grains.GetGrain<IEscrowGrain>(escrow.Id);
        var storage = App.Services.GetRequiredKeyedService<IGrainStorage>(EscrowStorage.ProviderName);
        // Stored as before the change: the clear tokens, no hashes, no secret's id. A write of the live activation in
        // between moves the ETag (this write is tried again); the activation goes, and the next one reads this state.
        await Eventually.UntilAsync(async () =>
        {
            var stored = await StoredAsync(App, escrow.Id);
            stored.State = stored.State! with { ReplyToken = legacyReply, AccessToken = legacyAccess, ReplyTokenHash = "", AccessTokenHash = "", TokenKeyId = null };
            try
            {
                await storage.WriteStateAsync("escrow", grain.GetGrainId(), stored);
                return true;
            }
            catch (InconsistentStateException)
            {
                return false;
            }
        }, written => written, "the legacy state written");
        await grain.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        await Eventually.UntilAsync(() => ReadAsync(escrow.Id, legacyAccess), r => r.StatusCode == HttpStatusCode.OK, "the escrow read again from storage");

        Assert.Equal(HttpStatusCode.OK, (await ReadAsync(escrow.Id, legacyAccess)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ReadAsync(escrow.Id, escrow.AccessToken)).StatusCode);
        Assert.Equal("ignored:unmatched", await ReplyAsync(escrow, escrow.ReplyToken));
        Assert.Equal("accepted", await ReplyAsync(escrow, legacyReply.ToUpperInvariant()));
        await App.WaitForStatusAsync(escrow.Id, "released");

        var ended = (await StoredAsync(App, escrow.Id)).State!;
        Assert.Equal(("", ""), (ended.ReplyToken, ended.AccessToken));
        Assert.Equal((TokenHash.OfReplyToken(legacyReply), TokenHash.OfAccessToken(legacyAccess)), (ended.ReplyTokenHash, ended.AccessTokenHash));
        Assert.Equal(HttpStatusCode.OK, (await ReadAsync(escrow.Id, legacyAccess)).StatusCode);
    }
}

/// <summary>The same on PostgreSQL: no table of the service, the grain state included, holds either token.</summary>
public sealed class TokenAtRestOnPostgresSecurityTests
{
    [Fact]
    public async Task No_table_and_no_grain_state_holds_the_access_token_or_the_reply_token_on_postgresql()
    {
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("tokens");
        await using var app = await Escrow.Tests.Api.Lifecycle.LifecycleApp.StartAsync("tokens", connectionString: connectionString);
        var recipient = await app.NewRecipientAsync(payouts: true);
        var created = await app.CreateHeldEscrowAsync(recipient);
        var id = created.GetProperty("id").GetGuid();
        var accessToken = created.GetProperty("accessToken").GetString()!;
        var replyToken = await app.ReplyTokenOfAsync(id);
        // The receipt's status link carries the access token: it was derived and sent, and is in no table either.
        await Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.Any(m => m.Tag == "payment-receipt" && m.TextBody!.Contains(Uri.EscapeDataString(accessToken), StringComparison.Ordinal))), "the receipt with the status link");
        await Eventually.UntilAsync(() => app.Store().GetEscrowAsync(id), p => p is not null, "the escrow's projection");
        var stored = (await TokenAtRestSecurityTests.StoredAsync(app, id)).State!;

        // The scan finds what it looks for: the hashes are in the grain state.
        Assert.Contains("orleans_grain_state.payload", await Escrow.Tests.Api.Operations.PersonalDataTests.WhereStoredAsync(connectionString, stored.AccessTokenHash));
        Assert.Contains("orleans_grain_state.payload", await Escrow.Tests.Api.Operations.PersonalDataTests.WhereStoredAsync(connectionString, stored.ReplyTokenHash));
        foreach (var token in new[] { accessToken, replyToken, replyToken[32..] })
        {
            Assert.Empty(await Escrow.Tests.Api.Operations.PersonalDataTests.WhereStoredAsync(connectionString, token));
        }
    }
}
