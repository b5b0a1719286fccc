using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Escrow.Tests.Security;

/// <summary>
/// An API with small per-address limits behind a trusted proxy network (10.0.0.0/8 and 192.0.2.1). The test sets the
/// connection's peer address with an X-Test-Peer header (TestServer has none), and counts the reads (GetAsync) each escrow grain
/// receives.
/// </summary>
public sealed class RateLimitFixture : IAsyncLifetime
{
    public const int Permits = 3;
    public const string PeerHeader = TestPeerAddress.Header;

    public EscrowApiFactory Factory { get; private set; } = null!;

    public ConcurrentDictionary<Guid, int> EscrowGrainCalls { get; } = new();

    public Task InitializeAsync()
    {
        Factory = new EscrowApiFactory(settings: new Dictionary<string, string?>
        {
            ["RateLimits:SenderPermitsPerMinute"] = Permits.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RateLimits:ReaderPermitsPerMinute"] = Permits.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Api:TrustedProxies:0"] = "10.0.0.0/8",
            ["Api:TrustedProxies:1"] = "192.0.2.1",
        })
        {
            ConfigureExtraServices = services =>
            {
                services.AddSingleton<IStartupFilter>(new TestPeerAddress());
                services.AddSingleton<IIncomingGrainCallFilter>(new CallCounter(this));
            },
        };
        _ = Factory.Server;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Factory.DisposeAsync();

    private sealed class CallCounter(RateLimitFixture fixture) : IIncomingGrainCallFilter
    {
        public Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.TargetContext.GrainInstance is IEscrowGrain && context.InterfaceMethod.Name == nameof(IEscrowGrain.GetAsync))
            {
                fixture.EscrowGrainCalls.AddOrUpdate(context.TargetContext.GrainId.GetGuidKey(), 1, (_, n) => n + 1);
            }
            return context.Invoke();
        }
    }
}

/// <summary>Rate limits that hold against forged forwarding headers, IPv6 address rotation and token guessing.</summary>
public sealed class RateLimitSecurityTests(RateLimitFixture fixture) : IClassFixture<RateLimitFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    /// <summary>A create refused by validation: the limiter counts it all the same, and nothing is created.</summary>
    private async Task<HttpStatusCode> CreateAsync(string peer, string? forwardedFor = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows") { Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        request.Headers.Add(RateLimitFixture.PeerHeader, peer);
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }
        return (await App.Anonymous().SendAsync(request)).StatusCode;
    }

    /// <summary>A held escrow, created from an address of its own (the limit is small).</summary>
    private async Task<Guid> HeldEscrowAsync()
    {
        var recipient = await App.NewRecipientAsync();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows") { Content = System.Net.Http.Json.JsonContent.Create(EscrowApiFactory.EscrowBody(recipient)) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        request.Headers.Add(RateLimitFixture.PeerHeader, $"172.16.{Fresh()}.1");
        var response = await App.Anonymous().SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await Contract.JsonOf(response)).GetProperty("id").GetGuid();
    }

    private static int _lastOctet;

    /// <summary>A part of an address no other test of this class uses, so no two tests share a limit.</summary>
    private static int Fresh() => Interlocked.Increment(ref _lastOctet);

    [Fact]
    public async Task A_forged_X_Forwarded_For_from_an_untrusted_peer_does_not_escape_the_senders_limit()
    {
        var peer = $"198.51.100.{Fresh()}";
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < RateLimitFixture.Permits + 1; i++)
        {
            statuses.Add(await CreateAsync(peer, forwardedFor: $"203.0.113.{i + 1}"));
        }

        Assert.All(statuses.Take(RateLimitFixture.Permits), s => Assert.Equal(HttpStatusCode.BadRequest, s));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit_and_a_forged_left_hop_changes_nothing()
    {
        var client = $"203.0.113.{Fresh()}";
        var other = $"198.18.0.{Fresh()}";
        for (var i = 0; i < RateLimitFixture.Permits; i++)
        {
            // The client writes its own X-Forwarded-For; the trusted proxies append the address they saw.
            Assert.Equal(HttpStatusCode.BadRequest, await CreateAsync("10.1.2.3", forwardedFor: $"100.64.0.{i + 1}, {client}, 192.0.2.1"));
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, await CreateAsync("10.9.9.9", forwardedFor: $"100.64.1.1, {client}"));
        Assert.Equal(HttpStatusCode.BadRequest, await CreateAsync("10.1.2.3", forwardedFor: other));
    }

    [Fact]
    public async Task IPv6_addresses_rotated_within_one_64_share_one_limit()
    {
        var prefix = $"2001:db8:{Fresh():x}:{Fresh():x}";
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < RateLimitFixture.Permits + 1; i++)
        {
            statuses.Add(await CreateAsync($"{prefix}::{i + 1:x}"));
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
        Assert.Equal(HttpStatusCode.BadRequest, await CreateAsync($"2001:db8:ffff:{Fresh():x}::1"));
    }

    [Fact]
    public async Task Guessing_access_tokens_for_an_escrow_is_rate_limited_per_address()
    {
        var id = await HeldEscrowAsync();
        var peer = $"198.51.100.{Fresh()}";
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < RateLimitFixture.Permits + 1; i++)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/escrows/{id}");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Convert.ToBase64String(Guid.NewGuid().ToByteArray().Concat(Guid.NewGuid().ToByteArray()).ToArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_'));
            request.Headers.Add(RateLimitFixture.PeerHeader, peer);
            // An invalid API key beside the token must not lift the limit.
            request.Headers.Add("X-Api-Key", "not-a-key-of-this-service-000");
            statuses.Add((await App.Anonymous().SendAsync(request)).StatusCode);
        }

        Assert.All(statuses.Take(RateLimitFixture.Permits), s => Assert.Equal(HttpStatusCode.Unauthorized, s));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
    }

    [Theory]
    [InlineData("short")]
    [InlineData("a-token-of-the-right-length-but-with-a-dot.")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123456789")]
    public async Task A_malformed_access_token_is_refused_before_any_escrow_grain_is_touched(string token)
    {
        var id = await HeldEscrowAsync();
        var before = fixture.EscrowGrainCalls.GetValueOrDefault(id);
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/escrows/{id}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add(RateLimitFixture.PeerHeader, $"198.51.100.{Fresh()}");

        var response = await App.Anonymous().SendAsync(request);

        await Contract.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal(before, fixture.EscrowGrainCalls.GetValueOrDefault(id));
    }
}
