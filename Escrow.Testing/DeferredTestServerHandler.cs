using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Escrow.Testing;

/// <summary>
/// Sends through the host's own TestServer, looked up at the first request rather than when the handler is built.
/// A restarted host has reminders due at once, so its silo activates escrows (and builds their Stripe client) before the
/// TestServer has started; <see cref="TestServer.CreateHandler()"/> throws then, and IHttpClientFactory keeps that
/// failure for the handler's lifetime (its Lazy caches the exception), failing every later Stripe call.
/// </summary>
public sealed class DeferredTestServerHandler(IServiceProvider services) : HttpMessageHandler
{
    private HttpMessageInvoker? _inner;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        _inner ??= new HttpMessageInvoker(((TestServer)services.GetRequiredService<IServer>()).CreateHandler());
        return _inner.SendAsync(request, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner?.Dispose();
        }
        base.Dispose(disposing);
    }
}
