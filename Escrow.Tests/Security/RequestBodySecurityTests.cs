using Escrow.Api.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Escrow.Tests.Security;

/// <summary>
/// An API with a small Postmark inbound limit that counts, per request (by its X-Test-Request header), how many body
/// bytes the service's pipeline took from the client: the test client itself drains whatever it was given.
/// </summary>
public sealed class BodyCountingFixture : IAsyncLifetime
{
    public const string RequestHeader = "X-Test-Request";

    public EscrowApiFactory Factory { get; private set; } = null!;

    public System.Collections.Concurrent.ConcurrentDictionary<string, long> BytesRead { get; } = new();

    public Task InitializeAsync()
    {
        Factory = new EscrowApiFactory(settings: new Dictionary<string, string?> { ["Postmark:InboundMaxBytes"] = SmallInboundLimitFixture.InboundMaxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            ConfigureExtraServices = services => services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter>(new CountingFilter(this)),
        };
        _ = Factory.Server;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Factory.DisposeAsync();

    private sealed class CountingFilter(BodyCountingFixture fixture) : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
        {
            app.Use(async (HttpContext context, RequestDelegate inner) =>
            {
                if (context.Request.Headers[RequestHeader].ToString() is { Length: > 0 } name)
                {
                    context.Request.Body = new CountingStream(context.Request.Body, n => fixture.BytesRead.AddOrUpdate(name, n, (_, total) => total + n));
                }
                await inner(context);
            });
            next(app);
        };
    }

    private sealed class CountingStream(Stream inner, Action<int> counted) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, count);
            counted(n);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            counted(n);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>
/// Oversized bodies: each endpoint's limit holds before the body is buffered, also for a body without Content-Length
/// (chunked), so a client cannot make the service hold more than the limit in memory.
/// </summary>
public sealed class RequestBodySecurityTests(BodyCountingFixture fixture) : IClassFixture<BodyCountingFixture>
{
    private const long EndlessBytes = 16L * 1024 * 1024;

    private EscrowApiFactory App => fixture.Factory;

    /// <summary>A JSON body that goes on far past any limit, counting what the server took of it.</summary>
    private sealed class EndlessJsonStream(string prefix) : Stream
    {
        private readonly byte[] _prefix = Encoding.UTF8.GetBytes(prefix);

        public long Served { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => Served; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, EndlessBytes - Served);
            for (var i = 0; i < n; i++)
            {
                var at = Served + i;
                buffer[offset + i] = at < _prefix.Length ? _prefix[at] : (byte)'a';
            }
            Served += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private long ServerRead(HttpRequestMessage request) => fixture.BytesRead.GetValueOrDefault(request.Headers.GetValues(BodyCountingFixture.RequestHeader).Single());

    private static HttpRequestMessage Chunked(string path, EndlessJsonStream body)
    {
        var content = new StreamContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.TransferEncodingChunked = true;
        request.Headers.Add(BodyCountingFixture.RequestHeader, Guid.NewGuid().ToString());
        return request;
    }

    [Fact]
    public async Task An_endless_chunked_create_is_cut_with_413_at_the_limit_instead_of_being_buffered_whole()
    {
        var body = new EndlessJsonStream("""{"recipientId":"r","message":" """);
        var request = Chunked("/v1/escrows", body);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());

        var response = await App.Anonymous().SendAsync(request);

        await Contract.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        // What the server took is the limit plus what the transport had in flight, not the 64 MiB offered.
        Assert.True(ServerRead(request) <= JsonBody.BodyBytesMax + 16 * 1024, $"the service read {ServerRead(request)} bytes");
    }

    [Fact]
    public async Task An_endless_chunked_inbound_mail_is_cut_with_413_at_the_inbound_limit_and_records_nothing()
    {
        var body = new EndlessJsonStream("""{"MessageID":"endless","TextBody":" """);
        var request = Chunked("/webhooks/postmark/inbound", body);
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{EscrowApiFactory.InboundUser}:{EscrowApiFactory.InboundPassword}")));

        var response = await App.Anonymous().SendAsync(request);

        await Contract.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.True(ServerRead(request) <= SmallInboundLimitFixture.InboundMaxBytes + 16 * 1024, $"the service read {ServerRead(request)} bytes");
        Assert.False(await App.Store().IsWebhookProcessedAsync("postmark", "endless"));
    }

    [Fact]
    public async Task A_declared_oversized_recipient_body_is_refused_with_413_before_a_byte_of_it_is_read()
    {
        var body = new EndlessJsonStream("""{"email":" """);
        var content = new StreamContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Headers.ContentLength = JsonBody.BodyBytesMax + 1;
        var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/recipients/{Contract.NewRecipient()}") { Content = content };
        request.Headers.Add(BodyCountingFixture.RequestHeader, Guid.NewGuid().ToString());

        var response = await App.Platform().SendAsync(request);

        await Contract.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(0, ServerRead(request));
    }

    private sealed class SizeFeature : IHttpMaxRequestBodySizeFeature
    {
        public bool IsReadOnly => false;

        public long? MaxRequestBodySize { get; set; } = 30_000_000;
    }

    /// <summary>A body that notes the server's body limit at the moment it is first read.</summary>
    private sealed class ObservedBody(SizeFeature feature) : MemoryStream(Encoding.UTF8.GetBytes("""{"reason":"x"}"""))
    {
        public long? LimitAtFirstRead { get; private set; }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            LimitAtFirstRead ??= feature.MaxRequestBodySize;
            return base.ReadAsync(buffer, cancellationToken);
        }
    }

    [Theory]
    [InlineData("/v1/escrows", JsonBody.BodyBytesMax)]
    [InlineData("/webhooks/stripe", JsonBody.BodyBytesMax)]
    [InlineData("/webhooks/postmark/inbound", SmallInboundLimitFixture.InboundMaxBytes)]
    public async Task The_servers_own_body_limit_is_set_to_the_endpoints_before_the_body_is_read(string path, long limit)
    {
        var feature = new SizeFeature();
        var body = new ObservedBody(feature);
        var context = new DefaultHttpContext { RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider() };
        context.Features.Set<IHttpMaxRequestBodySizeFeature>(feature);
        context.Request.Path = path;
        context.Request.Method = "POST";
        context.Request.ContentType = "application/json";
        context.Request.Headers.TransferEncoding = "chunked";
        context.Request.Body = body;
        var guard = new RequestBodyGuard(_ => Task.CompletedTask, Options.Create(new PostmarkOptions { InboundMaxBytes = SmallInboundLimitFixture.InboundMaxBytes }));

        await guard.InvokeAsync(context);

        Assert.Equal(limit, body.LimitAtFirstRead);
    }
}
