; Peal's Windows installer, built on Debian by `make package-windows`
; (scripts/windows.sh package) with Debian's makensis. Written for makensis
; rather than through Tauri's NSIS bundler, which downloads a plugin at build
; time; it does what Tauri's template does for a per-user install:
;  - the app and WebView2Loader.dll into %LOCALAPPDATA%\Programs\Peal, no
;    administrator needed;
;  - WebView2 (the page's engine) installed when the machine lacks it, with
;    Microsoft's bootstrapper, fetched at install time as Tauri's default
;    `downloadBootstrapper` mode does;
;  - a Start menu shortcut, and the app's id (app.peal.desktop) registered so
;    its notifications show under its name and icon;
;  - the `peal:` scheme, so a link opens the app (the running one: it keeps
;    one instance);
;  - an entry in Installed apps, and an uninstaller that removes all of it
;    (settings and the kept sign-in stay, as on Linux).
;
; makensis -DVERSION=0.1.0 -DAPP=path\peal-desktop.exe -DLOADER=path\WebView2Loader.dll
;          -DICON=icons\icon.ico -DPICTURE=icons\128x128.png -DOUT=Peal-setup.exe
;          [-DCOMPRESSOR=zlib] installer.nsi   (absolute paths: they are read from
;          this file's directory)

; A 64-bit installer for the 64-bit app (Debian's nsis has the amd64 stubs
; and plugins; it also runs under a 64-bit-only wine).
Target amd64-unicode
; What ships is LZMA-packed; the test under wine packs with zlib
; (-DCOMPRESSOR=zlib), minutes faster for a debug build's app.
!ifdef COMPRESSOR
  SetCompressor ${COMPRESSOR}
!else
  SetCompressor /SOLID lzma
!endif
!include "MUI2.nsh"
!include "LogicLib.nsh"

!define PRODUCT "Peal"
!define AUMID "app.peal.desktop"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${PRODUCT}"
!define WEBVIEW2_ID "{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"
!define WEBVIEW2_BOOTSTRAPPER "https://go.microsoft.com/fwlink/p/?LinkId=2124703"

Name "${PRODUCT}"
OutFile "${OUT}"
InstallDir "$LOCALAPPDATA\Programs\${PRODUCT}"
InstallDirRegKey HKCU "Software\${PRODUCT}" "InstallDir"
RequestExecutionLevel user
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "LegalCopyright" "MIT OR Apache-2.0"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_FINISHPAGE_RUN "$INSTDIR\peal-desktop.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT}"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; WebView2's version, from either hive ("" or 0.0.0.0: not installed).
!macro WebView2Version out
  ReadRegStr ${out} HKLM "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\${WEBVIEW2_ID}" "pv"
  ${If} ${out} == ""
    ReadRegStr ${out} HKCU "Software\Microsoft\EdgeUpdate\Clients\${WEBVIEW2_ID}" "pv"
  ${EndIf}
  ${If} ${out} == "0.0.0.0"
    StrCpy ${out} ""
  ${EndIf}
!macroend

Section "Install"
  ; A running copy holds its files: ask it to go first.
  nsExec::Exec 'taskkill /IM peal-desktop.exe'
  SetOutPath "$INSTDIR"
  File "/oname=peal-desktop.exe" "${APP}"
  File "/oname=WebView2Loader.dll" "${LOADER}"
  File "/oname=peal.ico" "${ICON}"
  File "/oname=peal.png" "${PICTURE}"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  !insertmacro WebView2Version $0
  ${If} $0 == ""
    DetailPrint "Installing Microsoft Edge WebView2 (the page's engine)..."
    nsExec::ExecToLog 'powershell -NoProfile -ExecutionPolicy Bypass -Command "Invoke-WebRequest -UseBasicParsing -Uri \"${WEBVIEW2_BOOTSTRAPPER}\" -OutFile \"$TEMP\MicrosoftEdgeWebview2Setup.exe\""'
    Pop $1
    ${If} $1 != 0
      MessageBox MB_ICONEXCLAMATION "Peal needs Microsoft Edge WebView2, and it could not be downloaded (no connection?). Install it from https://developer.microsoft.com/microsoft-edge/webview2/ and start Peal again." /SD IDOK
    ${Else}
      ExecWait '"$TEMP\MicrosoftEdgeWebview2Setup.exe" /silent /install' $1
      Delete "$TEMP\MicrosoftEdgeWebview2Setup.exe"
      ${If} $1 != 0
        MessageBox MB_ICONEXCLAMATION "Microsoft Edge WebView2 did not install (code $1). Install it from https://developer.microsoft.com/microsoft-edge/webview2/ and start Peal again." /SD IDOK
      ${EndIf}
    ${EndIf}
  ${EndIf}

  CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\peal-desktop.exe" "" "$INSTDIR\peal.ico"
  ; The notifications' sender: an unpackaged app's id, by name and picture.
  WriteRegStr HKCU "Software\Classes\AppUserModelId\${AUMID}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "Software\Classes\AppUserModelId\${AUMID}" "IconUri" "$INSTDIR\peal.png"
  ; peal: links.
  WriteRegStr HKCU "Software\Classes\peal" "" "URL:Peal link"
  WriteRegStr HKCU "Software\Classes\peal" "URL Protocol" ""
  WriteRegStr HKCU "Software\Classes\peal\DefaultIcon" "" "$INSTDIR\peal.ico"
  WriteRegStr HKCU "Software\Classes\peal\shell\open\command" "" '"$INSTDIR\peal-desktop.exe" "%1"'

  WriteRegStr HKCU "Software\${PRODUCT}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\peal.ico"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  nsExec::Exec 'taskkill /IM peal-desktop.exe'
  Delete "$INSTDIR\peal-desktop.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\peal.ico"
  Delete "$INSTDIR\peal.png"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${PRODUCT}.lnk"
  DeleteRegKey HKCU "Software\Classes\AppUserModelId\${AUMID}"
  DeleteRegKey HKCU "Software\Classes\peal"
  ; "Start Peal when I sign in" (tauri-plugin-autostart's Run entry).
  DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "${PRODUCT}"
  DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run" "${PRODUCT}"
  DeleteRegKey HKCU "Software\${PRODUCT}"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
SectionEnd
